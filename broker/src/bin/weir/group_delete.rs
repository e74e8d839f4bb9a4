//! `weir group delete <group>`: DeleteGroups for one group, which removes its
//! metadata and committed offsets. Refused by the broker while the group has
//! members. Main thread, blocking sockets.

use std::io::Write;

use kafka_protocol::ResponseError;
use weir_client::blocking::Client;

use crate::admin::{broker, CliError};

pub fn run(client: &mut Client, group: &str, out: &mut impl Write) -> Result<(), CliError> {
    match client.delete_group(group) {
        Ok(()) => {
            writeln!(out, "deleted group {group}")?;
            Ok(())
        }
        Err(e) if e.code() == Some(ResponseError::GroupIdNotFound.code()) => {
            Err(CliError::UnknownGroup(group.to_string()))
        }
        Err(e) if e.code() == Some(ResponseError::NonEmptyGroup.code()) => {
            Err(CliError::GroupInUse(group.to_string()))
        }
        Err(e) => Err(broker(format!("deleting group {group:?}"))(e)),
    }
}
