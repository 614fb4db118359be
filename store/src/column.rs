//! The fixed set of column families a Banyan store holds.

/// A column family of the store: one keyspace with its own files, tuned as a unit.
///
/// The set is fixed and declared here; [`Store::open`](crate::Store::open) opens exactly these.
/// To add a column, add a variant, give it a name in [`Column::name`] and list it in
/// [`Column::ALL`]: opening an older store then creates the new, empty column. Renaming or
/// removing a column, or changing what its keys or values mean, is a format change and needs a
/// bump of [`FORMAT_VERSION`](crate::FORMAT_VERSION).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// Store-wide metadata: the format marker, the last committed height and similar singletons.
    Meta,
    /// Block bodies, keyed by height or hash.
    Blocks,
    /// Block headers and the certificates that commit them.
    Headers,
    /// The chain's state (accounts, balances, registries), keyed by state key.
    State,
    /// Consensus safety data that must survive a restart (last voted round, locked block).
    Consensus,
    /// Outgoing cross-chain packets awaiting acknowledgement or timeout.
    Outbox,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 6] = [
        Column::Meta,
        Column::Blocks,
        Column::Headers,
        Column::State,
        Column::Consensus,
        Column::Outbox,
    ];

    /// The column family's name on disk. Never change a name once released.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Meta => "meta",
            Column::Blocks => "blocks",
            Column::Headers => "headers",
            Column::State => "state",
            Column::Consensus => "consensus",
            Column::Outbox => "outbox",
        }
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
