//! SASL authentication of a blocking connection (SaslHandshake v1, then
//! SaslAuthenticate: PLAIN, or SCRAM-SHA-256/512 with the server's signature
//! checked) and SCRAM user administration (Describe/AlterUserScramCredentials).
//! As Kafka's admin client, the salted password is derived here: the request
//! carries salt and salted password, never the password.

use bytes::Bytes;
use kafka_protocol::messages::{
    alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion},
    describe_user_scram_credentials_request::UserName,
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use weir_protocol::scram::{ClientExchange, Mechanism};

use super::{Client, ClientError};
use crate::error::check;

/// One user's credentials as DescribeUserScramCredentials reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub user: String,
    pub error_code: i16,
    /// (mechanism name, iterations)
    pub credentials: Vec<(String, i32)>,
}

/// One user's answer to AlterUserScramCredentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAltered {
    pub user: String,
    pub error_code: i16,
    pub error_message: Option<String>,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ClientError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b)
}

fn refused(message: String) -> ClientError {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, message).into()
}

impl Client {
    /// Authenticate this connection as `user` with `mechanism` (PLAIN,
    /// SCRAM-SHA-256 or SCRAM-SHA-512).
    pub fn sasl_authenticate(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        let r = self.call(SaslHandshakeRequest::default().with_mechanism(mechanism.to_string().into()))?;
        check(ApiKey::SaslHandshake, r.error_code)?;
        let Some(scram) = Mechanism::from_name(mechanism) else {
            let token = format!("\0{user}\0{password}");
            return self.sasl_round(Bytes::from(token.into_bytes())).map(|_| ());
        };
        let nonce = weir_protocol_nonce()?;
        let (mut exchange, first) = ClientExchange::start(scram, user, &nonce);
        let server_first = self.sasl_round(Bytes::from(first.into_bytes()))?;
        let last = exchange
            .finish(&server_first, password.as_bytes())
            .map_err(|e| refused(e.to_string()))?;
        let server_final = self.sasl_round(Bytes::from(last.into_bytes()))?;
        exchange
            .verify_server(&server_final)
            .map_err(|e| refused(format!("the broker's SCRAM signature: {e}")))
    }

    fn sasl_round(&mut self, token: Bytes) -> Result<Bytes, ClientError> {
        let r = self.call(SaslAuthenticateRequest::default().with_auth_bytes(token))?;
        if r.error_code != 0 {
            let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
            return Err(refused(format!(
                "SASL authentication failed ({}): {message}",
                r.error_code
            )));
        }
        Ok(r.auth_bytes)
    }

    /// Every user (`None`) or the named ones.
    pub fn describe_users(&mut self, users: Option<&[&str]>) -> Result<Vec<UserCredentials>, ClientError> {
        let users = users.map(|u| {
            u.iter()
                .map(|n| UserName::default().with_name(n.to_string().into()))
                .collect()
        });
        let r = self.call(DescribeUserScramCredentialsRequest::default().with_users(users))?;
        check(ApiKey::DescribeUserScramCredentials, r.error_code)?;
        Ok(r.results
            .into_iter()
            .map(|u| UserCredentials {
                user: u.user.to_string(),
                error_code: u.error_code,
                credentials: u
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = Mechanism::from_kafka_type(c.mechanism).map_or("UNKNOWN", Mechanism::name);
                        (name.to_string(), c.iterations)
                    })
                    .collect(),
            })
            .collect())
    }

    /// Set `user`'s password for `mechanism`: a fresh random salt, the salted
    /// password derived here with `iterations`.
    pub fn upsert_user(
        &mut self,
        user: &str,
        mechanism: Mechanism,
        iterations: i32,
        password: &str,
    ) -> Result<UserAltered, ClientError> {
        let salt = random_bytes::<32>()?.to_vec();
        let rounds = u32::try_from(iterations).unwrap_or(0);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, rounds);
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(user.to_string().into())
            .with_mechanism(mechanism.kafka_type())
            .with_iterations(iterations)
            .with_salt(salt.into())
            .with_salted_password(salted.into());
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
        self.alter_users(req)
    }

    /// Remove `user`'s credential for `mechanism`.
    pub fn delete_user(&mut self, user: &str, mechanism: Mechanism) -> Result<UserAltered, ClientError> {
        let deletion = ScramCredentialDeletion::default()
            .with_name(user.to_string().into())
            .with_mechanism(mechanism.kafka_type());
        let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
        self.alter_users(req)
    }

    /// Send an AlterUserScramCredentials request as built; the first result.
    pub fn alter_users(&mut self, req: AlterUserScramCredentialsRequest) -> Result<UserAltered, ClientError> {
        let r = self.call(req)?;
        let first = r
            .results
            .into_iter()
            .next()
            .ok_or_else(|| std::io::Error::other("no result in AlterUserScramCredentials response"))?;
        Ok(UserAltered {
            user: first.user.to_string(),
            error_code: first.error_code,
            error_message: first.error_message.map(|m| m.to_string()),
        })
    }
}

/// A client nonce: 24 random bytes as lowercase hex (printable, no commas).
fn weir_protocol_nonce() -> Result<String, ClientError> {
    Ok(random_bytes::<24>()?.iter().map(|b| format!("{b:02x}")).collect())
}
