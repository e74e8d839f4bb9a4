//! `weir user add|remove|list`: SASL users' SCRAM credentials through
//! Describe/AlterUserScramCredentials on a running broker (the salted password
//! is derived here, the password never leaves this process), or, with
//! `add --data-dir`, straight into a stopped broker's catalog to create the
//! first user. Main thread, blocking sockets and files.

use std::io::Write;

use weir_broker::metadata::catalog::ScramCredential;
use weir_broker::metadata::store;
use weir_protocol::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

use crate::admin::{broker, connect, print_table, CliError};
use crate::args::{UserArgs, UserCommand};

pub fn run(args: UserArgs, out: &mut impl Write) -> Result<(), CliError> {
    match args.command {
        UserCommand::Add {
            name,
            password,
            mechanism,
            iterations,
            data_dir,
        } => {
            let m = mechanism_named(&mechanism)?;
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                let m = format!("--iterations must be {MIN_ITERATIONS}..={MAX_ITERATIONS}");
                return Err(CliError::Usage(m));
            }
            if let Some(dir) = data_dir {
                return add_offline(&dir, &name, m, iterations, &password, out);
            }
            let mut client = connect(&args.bootstrap)?;
            let r = client
                .upsert_user(&name, m, iterations, &password)
                .map_err(broker(format!("adding user {name}")))?;
            answer(r, out, &format!("user {name}: {} set", m.name()))
        }
        UserCommand::Remove { name, mechanism } => {
            let mut client = connect(&args.bootstrap)?;
            let mechanisms = match mechanism {
                Some(m) => vec![mechanism_named(&m)?],
                None => {
                    let described = client
                        .describe_users(Some(&[name.as_str()]))
                        .map_err(broker(format!("describing user {name}")))?;
                    let found: Vec<Mechanism> = described
                        .iter()
                        .flat_map(|u| &u.credentials)
                        .filter_map(|(m, _)| Mechanism::from_name(m))
                        .collect();
                    if found.is_empty() {
                        return Err(CliError::Usage(format!("no user {name:?}")));
                    }
                    found
                }
            };
            for m in mechanisms {
                let r = client
                    .delete_user(&name, m)
                    .map_err(broker(format!("removing user {name}")))?;
                answer(r, out, &format!("user {name}: {} removed", m.name()))?;
            }
            Ok(())
        }
        UserCommand::List => {
            let mut client = connect(&args.bootstrap)?;
            let users = client.describe_users(None).map_err(broker("listing users"))?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .flat_map(|u| {
                    u.credentials
                        .iter()
                        .map(|(m, i)| vec![u.user.clone(), m.clone(), i.to_string()])
                })
                .collect();
            print_table(out, &["USER", "MECHANISM", "ITERATIONS"], &rows)?;
            Ok(())
        }
    }
}

fn mechanism_named(name: &str) -> Result<Mechanism, CliError> {
    Mechanism::from_name(name)
        .ok_or_else(|| CliError::Usage(format!("mechanism {name:?}: SCRAM-SHA-512 or SCRAM-SHA-256")))
}

fn answer(r: weir_client::blocking::UserAltered, out: &mut impl Write, done: &str) -> Result<(), CliError> {
    if r.error_code != 0 {
        let message = r.error_message.unwrap_or_default();
        return Err(CliError::Usage(format!(
            "user {}: error {}: {message}",
            r.user, r.error_code
        )));
    }
    writeln!(out, "{done}")?;
    Ok(())
}

/// Write the credential into `dir`'s catalog (the broker must be stopped: it
/// keeps its catalog in memory and would overwrite this on its next change).
fn add_offline(
    dir: &std::path::Path,
    name: &str,
    m: Mechanism,
    iterations: i32,
    password: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let fail = |e: store::StoreError| CliError::Usage(format!("catalog in {}: {e}", dir.display()));
    let catalog = store::load_or_init(dir).map_err(fail)?;
    let mut salt = [0u8; 32];
    getrandom::getrandom(&mut salt).map_err(|e| CliError::Usage(format!("no randomness: {e}")))?;
    let salted = m.salted_password(password.as_bytes(), &salt, iterations as u32);
    let c = Credential::from_salted(m, salt.to_vec(), iterations, &salted);
    let credential = ScramCredential {
        mechanism: m.kafka_type(),
        salt: c.salt,
        iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    };
    let next = catalog.with_credential(name, credential);
    store::save_blocking(dir, &next).map_err(fail)?;
    writeln!(out, "user {name}: {} set in {}", m.name(), dir.display())?;
    Ok(())
}
