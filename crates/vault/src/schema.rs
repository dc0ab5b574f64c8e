//! The tables of the modules above the store, made with a new vault and added to a vault made
//! before them. Apart from store.rs so that the store imports none of the modules that use
//! it; only home.rs, which makes and opens vaults, imports this.

use crate::{blobs, checkpoint, drafts, editions, head, import};

/// Made with a new vault, after the store's own tables.
pub(crate) const MADE: [&str; 6] = [
    blobs::SCHEMA,
    editions::SCHEMA,
    drafts::SCHEMA,
    checkpoint::SCHEMA,
    import::IMPORTED,
    head::SCHEMA,
];

/// Added at open to a vault of format 2, 3 or 4 made before them: attachments came within
/// format 2, editions, drafts and checkpoints later. (A vault without a head gets its head
/// tables and `imported` from `head_carry`, once its keys are at hand.)
pub(crate) const ADDED: [&str; 4] = [
    blobs::SCHEMA,
    editions::SCHEMA,
    drafts::SCHEMA,
    checkpoint::SCHEMA,
];
