//! `cairn office match`: candidate pairs of records of one person, from the vault's summaries.

use crate::cli::MatchArgs;
use crate::config::Config;
use crate::error::CliError;

pub fn run(_config: &Config, _args: MatchArgs) -> Result<(), CliError> {
    Err(CliError::failure("not yet"))
}
