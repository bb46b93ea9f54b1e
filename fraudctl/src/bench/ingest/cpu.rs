//! Where the CPU went during a case, from /proc (Linux): this process (the
//! service and the load generator), PostgreSQL's processes, everything else,
//! and the hypervisor's steal. In % of one core.

/// CPU time so far, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpu {
    process: u64,
    postgres: u64,
    /// The machine's busy time, steal excluded.
    busy: u64,
    steal: u64,
    /// All time over all cores.
    total: u64,
}

/// CPU use between two samples, in % of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub process: f64,
    pub postgres: f64,
    pub other: f64,
    pub steal: f64,
}

impl Usage {
    /// `process/postgres/other/steal`, e.g. `95/80/3/10`.
    pub fn short(&self) -> String {
        format!(
            "{:.0}/{:.0}/{:.0}/{:.0}",
            self.process, self.postgres, self.other, self.steal
        )
    }
}

impl Cpu {
    pub fn sample() -> Option<Cpu> {
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let all = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, steal, total) = machine(&all)?;
        let postgres = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter_map(|stat| match task(&stat) {
                Some(("postgres", ticks)) => Some(ticks),
                _ => None,
            })
            .sum();
        Some(Cpu {
            process: task(&own)?.1,
            postgres,
            busy,
            steal,
            total,
        })
    }

    /// From `self` to `later`, over `cores` cores.
    /// `ticks` of some process between this sample and `later`, in % of
    /// one core (with [`ticks_of`] taken beside each sample).
    pub fn share(&self, later: &Cpu, cores: usize, ticks: (u64, u64)) -> f64 {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        ticks.1.saturating_sub(ticks.0) as f64 * 100.0 * cores as f64 / total
    }

    pub fn usage(&self, later: &Cpu, cores: usize) -> Usage {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let pct = |a: u64, b: u64| b.saturating_sub(a) as f64 * 100.0 * cores as f64 / total;
        let process = pct(self.process, later.process);
        let postgres = pct(self.postgres, later.postgres);
        Usage {
            process,
            postgres,
            other: (pct(self.busy, later.busy) - process - postgres).max(0.0),
            steal: pct(self.steal, later.steal),
        }
    }
}

/// A `/proc/<pid>/stat` line: the command name and utime + stime.
/// CPU time of process `pid` so far, in clock ticks (0 once it is gone).
pub fn ticks_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| task(&stat).map(|(_, ticks)| ticks))
        .unwrap_or(0)
}

fn task(stat: &str) -> Option<(&str, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    // After the name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((comm, ticks))
}

/// `/proc/stat`'s first line, `cpu user nice system idle iowait irq softirq
/// steal ...`: (busy without steal, steal, total).
fn machine(all: &str) -> Option<(u64, u64, u64)> {
    let ticks: Vec<u64> = all
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let (idle, steal) = (ticks.get(3)? + ticks.get(4)?, *ticks.get(7)?);
    Some((total - idle - steal, steal, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_are_read() {
        let own = "4242 (fraud ctl) R 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 9 0";
        assert_eq!(task(own), Some(("fraud ctl", 200)));
        assert_eq!(task("garbage"), None);
        let all = "cpu  100 0 50 800 50 0 0 40 0 0\ncpu0 50 0 25 400 25 0 0 20 0 0\n";
        assert_eq!(machine(all), Some((150, 40, 1040)));
    }

    #[test]
    fn usage_is_split_between_us_postgres_and_the_rest() {
        let a = Cpu {
            process: 0,
            postgres: 0,
            busy: 0,
            steal: 0,
            total: 0,
        };
        // 200 ticks over 2 cores = 1 s: 100 ticks are 100% of one core.
        let b = Cpu {
            process: 80,
            postgres: 60,
            busy: 160,
            steal: 20,
            total: 200,
        };
        let u = a.usage(&b, 2);
        assert_eq!(
            u,
            Usage {
                process: 80.0,
                postgres: 60.0,
                other: 20.0,
                steal: 20.0
            }
        );
        assert_eq!(u.short(), "80/60/20/20");
    }
}
