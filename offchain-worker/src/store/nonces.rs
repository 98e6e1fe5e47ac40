//! Replay protection for signed API requests: each (account, nonce) once until it expires.

use super::*;

impl Store {
    /// Records `nonce` for `account` until `expires_at_ms`; returns false if it is already
    /// recorded (a replay). Check and record are one transaction, so two concurrent requests
    /// with the same nonce cannot both pass. Entries that expired before `now_ms` are pruned.
    pub fn record_nonce(
        &self,
        account: &AccountId,
        nonce: &[u8; 16],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut nonces = txn.open_table(NONCES)?;
            let mut expiry = txn.open_table(NONCE_EXPIRY)?;
            let expired = expiry
                .range(..(now_ms, [0u8; 32], [0u8; 16]))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<Vec<_>, _>>()?;
            for (at, acc, n) in expired {
                expiry.remove((at, acc, n))?;
                nonces.remove((acc, n))?;
            }
            if nonces.get((*account, *nonce))?.is_some() {
                return Ok(false);
            }
            nonces.insert((*account, *nonce), expires_at_ms)?;
            expiry.insert((expires_at_ms, *account, *nonce), ())?;
            Ok(true)
        })
    }
}
