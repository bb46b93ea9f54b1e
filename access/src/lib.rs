//! Bearer tokens with roles (`ingest`, `analyst`, `admin`), shared by the
//! command side and the query API so both read `SENTINEL_TOKENS` the same
//! way and check tokens the same way.
//!
//! Tokens come as `token:role` pairs separated by commas
//! (`"tA:ingest,tB:analyst,tC:admin"`); a token listed twice holds both
//! roles, and `admin` holds every role. A pair may name who holds the token,
//! `token:role@name` (`"tC:admin@alice,tD:admin@bob"`): the name is what the
//! audit records as the actor (policy publish and promote, four eyes);
//! unnamed tokens are `token #N` by their place in the list. With no tokens
//! configured, checks answer `Open`.
//!
//! Tokens are secrets: compared in constant time, never echoed in an error,
//! and `Debug` shows only how many there are. Nothing here knows HTTP; the
//! services turn verdicts into 401/403. [`tokens`] reads them from the
//! environment for both services' settings, here rather than with the other
//! variables (`settings::var`) because its errors must never quote the value.

use std::fmt;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// POST transactions.
    Ingest,
    /// Resolve alerts and record labels.
    Analyst,
    /// Everything.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "ingest" => Some(Role::Ingest),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether holding `self` is enough for a route that needs `needed`.
    pub fn grants(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// The configured tokens. Empty means open mode.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(Box<[u8]>, Role)>,
    /// The holder's name per entry, when given.
    names: Vec<Option<String>>,
}

/// How a presented token fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No tokens are configured: everything is allowed.
    Open,
    Allowed,
    /// The token is known but holds no role that grants what is needed.
    Forbidden,
    /// The token is not known.
    Unknown,
}

impl Tokens {
    /// Parses `token:role[,token:role...]`. Errors never quote a token.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for (index, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let n = index + 1;
            // The role is after the last colon, so a token may contain colons.
            let Some((token, role)) = item.rsplit_once(':') else {
                return Err(format!("entry {n} is not token:role"));
            };
            if token.is_empty() || token.chars().any(char::is_whitespace) {
                return Err(format!(
                    "entry {n}: the token is empty or contains whitespace"
                ));
            }
            let (role, name) = match role.split_once('@') {
                Some((role, name)) => (role, Some(name.trim())),
                None => (role, None),
            };
            let role = Role::parse(role.trim()).ok_or_else(|| {
                format!("entry {n}: the role is not one of ingest, analyst, admin")
            })?;
            if name.is_some_and(|n| n.is_empty() || n.len() > 64) {
                return Err(format!("entry {n}: a name after @ is 1 to 64 characters"));
            }
            entries.push((token.as_bytes().into(), role));
            names.push(name.map(str::to_owned));
        }
        Ok(Tokens { entries, names })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many `token:role` entries are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `presented` may do what needs `needed`.
    pub fn check(&self, presented: Option<&[u8]>, needed: Role) -> Verdict {
        if self.entries.is_empty() {
            return Verdict::Open;
        }
        let Some(presented) = presented else {
            return Verdict::Unknown;
        };
        // Every entry is compared, matched or not, so the time taken does
        // not tell which entry (or how much of one) matched.
        let (mut known, mut granted) = (false, false);
        for (token, role) in &self.entries {
            let same = constant_time_eq(token, presented);
            known |= same;
            granted |= same && role.grants(needed);
        }
        match (known, granted) {
            (_, true) => Verdict::Allowed,
            (true, false) => Verdict::Forbidden,
            (false, _) => Verdict::Unknown,
        }
    }

    /// Which configured token `presented` is, as a number that stands for
    /// it (the same for every role it is listed with), so that per-token
    /// bookkeeping (rate limits) need not keep a copy of the secret. Like
    /// `check`, compares against every entry whatever matches.
    pub fn identify(&self, presented: &[u8]) -> Option<usize> {
        let mut found = None;
        for (index, (token, _)) in self.entries.iter().enumerate() {
            if constant_time_eq(token, presented) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }
}

impl Tokens {
    /// Who holds `presented`: the name given with the token, else
    /// `token #N` (its first place in the list); `None` for an unknown token.
    pub fn holder(&self, presented: &[u8]) -> Option<String> {
        let index = self.identify(presented)?;
        let token = &self.entries[index].0;
        let named = self
            .entries
            .iter()
            .zip(&self.names)
            .find_map(|((t, _), name)| (t == token).then_some(name.clone()).flatten());
        Some(named.unwrap_or_else(|| format!("token #{}", index + 1)))
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<&str> = self.entries.iter().map(|(_, r)| r.as_str()).collect();
        write!(
            f,
            "Tokens({} redacted, roles {roles:?})",
            self.entries.len()
        )
    }
}

/// Byte equality whose running time depends only on the lengths, not on
/// where the first difference is (a timing side channel would otherwise let
/// a caller guess a token byte by byte). Hand-written to keep the dependency
/// tree small; `black_box` stops the optimiser from adding an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    diff == 0
}

/// The tokens in environment variable `name` (`SENTINEL_TOKENS`); unset
/// means none (open mode). Unlike `settings::var`, an error never quotes the
/// value: it is a secret, and error messages end up in logs.
pub fn tokens(name: &str) -> anyhow::Result<Tokens> {
    match std::env::var(name) {
        Ok(text) => Tokens::parse(&text).map_err(|e| anyhow::anyhow!("{name}: {e}")),
        Err(std::env::VarError::NotPresent) => Ok(Tokens::default()),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{name} is not valid UTF-8"),
    }
}

/// The token of an `Authorization` header value, `Bearer <token>` (scheme
/// name in any case, RFC 6750 / RFC 9110).
pub fn bearer_of(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_holders_and_numbers_the_unnamed() {
        let tokens = Tokens::parse("tA:admin@alice,tB:admin,tA:analyst").unwrap();
        assert_eq!(tokens.holder(b"tA").as_deref(), Some("alice"));
        assert_eq!(tokens.holder(b"tB").as_deref(), Some("token #2"));
        assert_eq!(tokens.holder(b"tC"), None);
        assert_eq!(tokens.check(Some(b"tA"), Role::Admin), Verdict::Allowed);
        assert!(Tokens::parse("tA:admin@").is_err());
    }

    #[test]
    fn parses_pairs_and_refuses_without_quoting_the_token() {
        let tokens = Tokens::parse(" a:b:ingest , sec-2:analyst,,x:admin ").expect("valid");
        assert_eq!(tokens.entries.len(), 3);
        assert_eq!(&*tokens.entries[0].0, b"a:b");
        for bad in ["s3cret", "s3cret:root", ":admin", "s3 cret:admin"] {
            let error = Tokens::parse(bad).expect_err(bad);
            assert!(!error.contains("s3"), "{error}");
        }
        assert!(Tokens::parse("").expect("empty").is_empty());
    }

    #[test]
    fn roles_and_admin() {
        let tokens =
            Tokens::parse("i:ingest,a:analyst,both:ingest,both:analyst,root:admin").expect("valid");
        let check = |t: &str, r| tokens.check(Some(t.as_bytes()), r);
        assert_eq!(check("i", Role::Ingest), Verdict::Allowed);
        assert_eq!(check("i", Role::Analyst), Verdict::Forbidden);
        assert_eq!(check("both", Role::Analyst), Verdict::Allowed);
        assert_eq!(check("root", Role::Analyst), Verdict::Allowed);
        assert_eq!(check("root", Role::Ingest), Verdict::Allowed);
        assert_eq!(check("ii", Role::Ingest), Verdict::Unknown);
        assert_eq!(tokens.check(None, Role::Ingest), Verdict::Unknown);
        assert_eq!(Tokens::default().check(None, Role::Admin), Verdict::Open);
    }

    #[test]
    fn a_token_is_identified_by_its_first_entry() {
        let tokens = Tokens::parse("i:ingest,a:analyst,i:analyst").expect("valid");
        assert_eq!(tokens.identify(b"i"), Some(0));
        assert_eq!(tokens.identify(b"a"), Some(1));
        assert_eq!(tokens.identify(b"x"), None);
        assert_eq!(Tokens::default().identify(b"i"), None);
    }

    #[test]
    fn debug_never_shows_a_token() {
        let tokens = Tokens::parse("very-secret:admin").expect("valid");
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("admin"));
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_of(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_of(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_of(b"Basic abc"), None);
        assert_eq!(bearer_of(b"Bearer "), None);
        assert_eq!(bearer_of(b"Bearerabc"), None);
    }

    #[test]
    fn constant_time_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
