//! TEMPORARY: replaced by the real calls in client.rs (branch ckserver).
use cairn_crypto::DeviceKeys;
use cairn_protocol::checkpoint::CheckpointPage;

use crate::{Client, SyncError};

impl Client {
    pub async fn post_checkpoints(
        &self,
        _keys: &DeviceKeys,
        _parts: &[Vec<u8>],
    ) -> Result<(), SyncError> {
        Err(SyncError::Protocol("stub".into()))
    }
    pub async fn checkpoints(
        &self,
        _keys: &DeviceKeys,
        _team: &str,
        _after: Option<(u64, u32)>,
    ) -> Result<CheckpointPage, SyncError> {
        Err(SyncError::Protocol("stub".into()))
    }
}
