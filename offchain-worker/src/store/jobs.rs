//! The job backlog: one record per assigned request, the pending index and the per-epoch
//! index that deletion uses.

use super::*;

impl Store {
    /// Inserts `job` unless its request id is known; returns whether it was inserted, so
    /// replayed chain events are handled once.
    pub fn insert_job(&self, job: &Job) -> Result<bool, StoreError> {
        let bytes = encode("job", job)?;
        self.write(|txn| {
            let mut jobs = txn.open_table(JOBS)?;
            if jobs.get(job.request_id)?.is_some() {
                return Ok(false);
            }
            jobs.insert(job.request_id, bytes.as_slice())?;
            index_job(txn, None, job)?;
            Ok(true)
        })
    }

    pub fn job(&self, request_id: u64) -> Result<Option<Job>, StoreError> {
        self.read(|txn| {
            txn.open_table(JOBS)?
                .get(request_id)?
                .map(|v| decode("job", v.value()))
                .transpose()
        })
    }

    /// Replaces the stored job with `request_id` (inserting it if absent).
    pub fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let bytes = encode("job", job)?;
        self.write(|txn| {
            let mut jobs = txn.open_table(JOBS)?;
            let old: Option<Job> = jobs
                .insert(job.request_id, bytes.as_slice())?
                .map(|v| decode("job", v.value()))
                .transpose()?;
            drop(jobs);
            index_job(txn, old.as_ref(), job)
        })
    }

    /// The backlog: every job not settled, by ascending request id.
    pub fn jobs_not_settled(&self) -> Result<Vec<Job>, StoreError> {
        self.read(|txn| {
            let pending = txn.open_table(JOBS_PENDING)?;
            let jobs = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for entry in pending.iter()? {
                let id = entry?.0.value();
                out.push(load_job(&jobs, id)?);
            }
            Ok(out)
        })
    }

    /// Every job of `model_id`'s `epoch`, by ascending request id.
    pub fn jobs_of_epoch(&self, model_id: u32, epoch: u32) -> Result<Vec<Job>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(JOBS_BY_EPOCH)?;
            let jobs = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for entry in index.range((model_id, epoch, 0)..=(model_id, epoch, u64::MAX))? {
                let (_, _, id) = entry?.0.value();
                out.push(load_job(&jobs, id)?);
            }
            Ok(out)
        })
    }
}
