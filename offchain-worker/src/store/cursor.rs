//! The follower's cursor: the last finalized block it processed.

use super::*;

impl Store {
    /// The last finalized block fully processed.
    pub fn cursor(&self) -> Result<Option<(u32, Hash)>, StoreError> {
        self.read(|txn| Ok(txn.open_table(CURSOR)?.get(CURSOR_KEY)?.map(|v| v.value())))
    }

    pub fn set_cursor(&self, number: u32, hash: &Hash) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(CURSOR)?
                .insert(CURSOR_KEY, (number, *hash))?;
            Ok(())
        })
    }
}
