//! The files of an agent's job, through its transfer in the store: its workspace, the history
//! of the push range it scans, the artifacts and caches it may read, and what it made (see the
//! parent module and `mobius_store::transfers`). Every call is refused unless the agent holds
//! the job.

use mobius_pipelines::store_sync::{self, Received, Record, RecordScope, SyncError};
use mobius_store::AgentJobState;
use mobius_store::transfers::{MADE, SOURCE};

use super::{AgentError, Agents, HISTORY, Sealed};

impl Agents {
    /// `GET /api/v1/agent/jobs/{id}/history`: the objects of the push range a job that reads
    /// history scans (a pack, see `mobius_pipelines::history`); `None` when it has none.
    pub async fn history(&self, id: i64, agent: &str) -> Result<Option<Vec<u8>>, AgentError> {
        let transfer = self.held(id, agent).await?.transfer;
        Ok(self.store(move |s| s.transfer_file(&transfer, HISTORY)).await?)
    }

    /// `GET /api/v1/agent/jobs/{id}/source`: the packed workspace of a job this agent holds;
    /// `None` when the job has none (it does not check out).
    pub async fn source(&self, id: i64, agent: &str) -> Result<Option<Vec<u8>>, AgentError> {
        let transfer = self.held(id, agent).await?.transfer;
        Ok(self.store(move |s| s.transfer_file(&transfer, SOURCE)).await?)
    }

    /// The job this agent holds, opened: refused when it does not hold it.
    async fn held(&self, id: i64, agent: &str) -> Result<Sealed, AgentError> {
        let job = self.store(move |s| s.agent_job(id)).await?;
        match job {
            Some(job) if job.state == AgentJobState::Running && job.agent.as_deref() == Some(agent) => {
                self.open(&job).map_err(AgentError::Payload)
            }
            _ => Err(AgentError::NotHeld(id)),
        }
    }

    /// `GET …/records`: the artifact and cache records the job may read (see
    /// `mobius_pipelines::store_sync`), as they were when it was queued.
    pub async fn records(&self, id: i64, agent: &str) -> Result<Vec<Record>, AgentError> {
        Ok(self.held(id, agent).await?.records)
    }

    /// `GET …/blobs/{digest}`: a blob one of the job's readable records names.
    pub async fn blob(&self, id: i64, agent: &str, digest: String) -> Result<Vec<u8>, AgentError> {
        store_sync::check_digest(&digest)?;
        let transfer = self.held(id, agent).await?.transfer;
        let name = digest.clone();
        let bytes = self.store(move |s| s.transfer_file(&transfer, &name)).await?;
        let bytes = bytes.ok_or_else(|| AgentError::NoBlob(id, digest.clone()))?;
        // A corrupt blob is not passed on.
        store_sync::check_blob(&digest, &bytes)?;
        Ok(bytes)
    }

    /// `POST …/blobs/missing`: which of these blobs the server lacks (those it has are kept for
    /// the job from now on).
    pub async fn missing_blobs(&self, id: i64, agent: &str, digests: Vec<String>) -> Result<Vec<String>, AgentError> {
        for digest in &digests {
            store_sync::check_digest(digest)?;
        }
        let transfer = self.held(id, agent).await?.transfer;
        Ok(self.store(move |s| s.hold_transfer_blobs(&transfer, &digests)).await?)
    }

    /// `PUT …/blobs/{digest}`: a blob the job made, stored once its digest is checked.
    pub async fn put_blob(&self, id: i64, agent: &str, digest: String, bytes: Vec<u8>) -> Result<(), AgentError> {
        store_sync::check_blob(&digest, &bytes)?;
        let transfer = self.held(id, agent).await?.transfer;
        Ok(self.store(move |s| s.put_transfer_file(&transfer, &digest, &digest, &bytes)).await?)
    }

    /// `POST …/records`: the records the job made (artifacts of its run, caches of its branch),
    /// after their blobs. The run's dispatcher writes them into its artifact store when the job
    /// ends.
    pub async fn put_records(&self, id: i64, agent: &str, records: Vec<Record>) -> Result<(), AgentError> {
        let sealed = self.held(id, agent).await?;
        let named = store_sync::check_records(&RecordScope::of(&sealed.job), Received::FromAgent, &records)?;
        let digests: Vec<String> = named.iter().map(|(_, digest)| digest.clone()).collect();
        let transfer = sealed.transfer;
        let json = serde_json::to_vec(&records).map_err(|e| AgentError::BadReport(e.to_string()))?;
        let missing = self
            .store(move |s| {
                let missing = s.hold_transfer_blobs(&transfer, &digests)?;
                if missing.is_empty() {
                    s.put_transfer_file(&transfer, MADE, &store_sync::digest_of(&json), &json)?;
                }
                Ok(missing)
            })
            .await?;
        match named.into_iter().find(|(_, digest)| missing.contains(digest)) {
            Some((path, digest)) => Err(AgentError::Sync(SyncError::MissingBlob { path, digest })),
            None => Ok(()),
        }
    }
}
