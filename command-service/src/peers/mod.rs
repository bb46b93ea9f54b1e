//! What the command side keeps of the whole log, beyond each customer's own
//! stream: the merchants' and categories' daily counts
//! (`domain::peers::PeerBook`) that the features' merchant and category
//! fraud rates read, and the transaction directory that labels use to find
//! their transaction.
//!
//! Both are folded from the global log by one follower (`follower`): at
//! start, from position 0 to the head before the service answers anything
//! (`LivePeers::load`), then live, event by event, through
//! `EventStore::subscribe_all` from where the start left off. The book is
//! stamped with the position it was folded through (`as_of`), which each
//! decision records (`TransactionRecorded::peers_as_of`), so replay gives a
//! transaction exactly the counts its decision saw (`domain::peers::PeerReplay`).
//! A batch of events is folded under one write lock; snapshots take a read
//! lock and copy out a few numbers.

pub mod directory;
mod follower;
mod live;

pub use directory::Directory;
pub use follower::Follower;
pub use live::LivePeers;
