//! SASL message formats and key derivation: SCRAM-SHA-256 and SCRAM-SHA-512
//! (RFC 5802, RFC 7677) and PLAIN (RFC 4616). Pure functions, no I/O: the
//! broker's authenticator (broker/src/network/sasl.rs) and the client side
//! (weir-client, the CLI, tests) share them.
//! Invariants: a stored credential is (salt, iterations, StoredKey, ServerKey),
//! never the password or the salted password; proofs and keys are compared in
//! constant time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on SCRAM iterations (ScramMechanism: 4096..=16384).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("nonce does not match the server's")]
    BadNonce,
    #[error("invalid proof")]
    BadProof,
    #[error("channel binding is not supported")]
    ChannelBinding,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism type of Describe/AlterUserScramCredentials (Kafka's
    /// ScramMechanism: 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
    pub fn kafka_type(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(t: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.kafka_type() == t)
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Hi(password, salt, i) of RFC 5802: PBKDF2 with this HMAC. Costly by
    /// design (`iterations` HMACs): callers on an executor run it on a
    /// blocking pool.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Self::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }

    /// (StoredKey, ServerKey) from a salted password.
    pub fn keys(self, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted_password, b"Client Key");
        let stored_key = self.hash(&client_key);
        let server_key = self.hmac(salted_password, b"Server Key");
        (stored_key, server_key)
    }
}

/// What the server keeps per user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl Credential {
    /// From a salted password (AlterUserScramCredentials carries salt and salted password).
    pub fn from_salted(m: Mechanism, salt: Vec<u8>, iterations: i32, salted_password: &[u8]) -> Self {
        let (stored_key, server_key) = m.keys(salted_password);
        Self {
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }

    /// Whether `password` is this credential's (PLAIN): runs the full PBKDF2.
    pub fn password_matches(&self, m: Mechanism, password: &[u8]) -> bool {
        let iterations = u32::try_from(self.iterations).unwrap_or(0);
        let salted = m.salted_password(password, &self.salt, iterations);
        let (stored_key, _) = m.keys(&salted);
        bool::from(stored_key.ct_eq(&self.stored_key))
    }
}

/// The client's first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    pub username: String,
    pub nonce: String,
    /// `client-first-message-bare`, part of the AuthMessage.
    pub bare: String,
    /// The gs2 header, echoed base64 in the client-final `c=` attribute.
    pub gs2_header: String,
}

/// `saslname` decoding: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

pub fn parse_client_first(bytes: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (cbind, rest) = text
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(ScramError::Malformed("bad authzid"));
    }
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(ScramError::Malformed("no user name"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or(ScramError::Malformed("no nonce"))?;
    let username = decode_saslname(user)?;
    if username.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(ClientFirst {
        username,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
        gs2_header: format!("{cbind},{authzid},"),
    })
}

pub fn server_first(nonce: &str, salt: &[u8], iterations: i32) -> String {
    format!("r={nonce},s={},i={iterations}", B64.encode(salt))
}

/// The client's final message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    pub channel_binding: String,
    pub nonce: String,
    pub proof: Vec<u8>,
    /// `client-final-message-without-proof`, part of the AuthMessage.
    pub without_proof: String,
}

pub fn parse_client_final(bytes: &[u8]) -> Result<ClientFinal, ScramError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof"))?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(ScramError::Malformed("no channel binding"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("no nonce"))?;
    let proof = B64
        .decode(proof)
        .map_err(|_| ScramError::Malformed("proof is not base64"))?;
    Ok(ClientFinal {
        channel_binding: channel_binding.to_string(),
        nonce: nonce.to_string(),
        proof,
        without_proof: without_proof.to_string(),
    })
}

/// Check the client-final against the exchange so far; on success the
/// server-final message (`v=ServerSignature`).
pub fn verify_client_final(
    m: Mechanism,
    credential: &Credential,
    first: &ClientFirst,
    server_first: &str,
    server_nonce: &str,
    fin: &ClientFinal,
) -> Result<String, ScramError> {
    // Kafka's ScramSaslServer checks `endsWith`, not equality: librdkafka
    // before 2.2 (Debian's kcat has 2.0.2) sends the client nonce twice
    // (measured: its client-final carries client nonce + server nonce).
    if !fin.nonce.ends_with(server_nonce) {
        return Err(ScramError::BadNonce);
    }
    if B64.decode(&fin.channel_binding).ok().as_deref() != Some(first.gs2_header.as_bytes()) {
        return Err(ScramError::ChannelBinding);
    }
    let auth_message = format!("{},{server_first},{}", first.bare, fin.without_proof);
    let signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
    if fin.proof.len() != signature.len() {
        return Err(ScramError::BadProof);
    }
    let client_key: Vec<u8> = fin.proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    if !bool::from(m.hash(&client_key).ct_eq(&credential.stored_key)) {
        return Err(ScramError::BadProof);
    }
    let server_signature = m.hmac(&credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)))
}

/// PLAIN's `[authzid] NUL authcid NUL passwd`: (user, password).
pub fn parse_plain(bytes: &[u8]) -> Result<(String, &[u8]), ScramError> {
    let mut parts = bytes.splitn(3, |b| *b == 0);
    let _authzid = parts.next().ok_or(ScramError::Malformed("PLAIN: no authzid"))?;
    let user = parts.next().ok_or(ScramError::Malformed("PLAIN: no user name"))?;
    let password = parts.next().ok_or(ScramError::Malformed("PLAIN: no password"))?;
    let user = std::str::from_utf8(user).map_err(|_| ScramError::Malformed("PLAIN: user not UTF-8"))?;
    if user.is_empty() {
        return Err(ScramError::Malformed("PLAIN: empty user name"));
    }
    Ok((user.to_string(), password))
}

/// The client side of one SCRAM exchange (the CLI and tests).
pub struct ClientExchange {
    mechanism: Mechanism,
    bare: String,
    nonce: String,
    server_signature: Vec<u8>,
}

impl ClientExchange {
    /// Start with a fresh `nonce` (printable, no commas); returns the client-first message.
    pub fn start(mechanism: Mechanism, user: &str, nonce: &str) -> (Self, String) {
        let bare = format!("n={},r={nonce}", encode_saslname(user));
        let first = format!("n,,{bare}");
        let this = Self {
            mechanism,
            bare,
            nonce: nonce.to_string(),
            server_signature: Vec::new(),
        };
        (this, first)
    }

    /// Answer the server-first message: the client-final message.
    pub fn finish(&mut self, server_first: &[u8], password: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r="));
        let salt = attrs.next().and_then(|a| a.strip_prefix("s="));
        let iterations = attrs.next().and_then(|a| a.strip_prefix("i="));
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError::Malformed("server-first"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::BadNonce);
        }
        let salt = B64.decode(salt).map_err(|_| ScramError::Malformed("salt"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("iterations"))?;
        let m = self.mechanism;
        let salted = m.salted_password(password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = m.hmac(&server_key, auth_message.as_bytes());
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Check the server-final message (mutual authentication).
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let v = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramError::Malformed("server-final"))?;
        if bool::from(v.ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(ScramError::BadProof)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example (user "user", password "pencil").
    #[test]
    fn given_rfc7677_example_when_verified_should_accept_and_sign_as_the_rfc() {
        let m = Mechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let cred = Credential::from_salted(m, salt, 4096, &salted);
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.username, "user");
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sf = server_first(nonce, &cred.salt, 4096);
        assert_eq!(
            sf,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = parse_client_final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .unwrap();
        let v = verify_client_final(m, &cred, &first, &sf, nonce, &fin).unwrap();
        assert_eq!(v, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(cred.password_matches(m, b"pencil"));
        assert!(!cred.password_matches(m, b"pencil2"));
    }

    #[test]
    fn given_the_client_side_when_run_against_the_server_side_should_agree_and_refuse_a_wrong_password() {
        for m in Mechanism::ALL {
            let salt = b"0123456789abcdef".to_vec();
            let cred = Credential::from_salted(m, salt.clone(), 4096, &m.salted_password(b"pw", &salt, 4096));
            for (password, ok) in [(&b"pw"[..], true), (b"wrong", false)] {
                let (mut client, cf) = ClientExchange::start(m, "a,b=c", "abc");
                let first = parse_client_first(cf.as_bytes()).unwrap();
                assert_eq!(first.username, "a,b=c");
                let nonce = format!("{}xyz", first.nonce);
                let sf = server_first(&nonce, &cred.salt, cred.iterations);
                let cfin = client.finish(sf.as_bytes(), password).unwrap();
                let fin = parse_client_final(cfin.as_bytes()).unwrap();
                let result = verify_client_final(m, &cred, &first, &sf, &nonce, &fin);
                assert_eq!(result.is_ok(), ok, "{m:?}");
                if let Ok(v) = result {
                    client.verify_server(v.as_bytes()).unwrap();
                }
            }
        }
    }

    #[test]
    fn given_bad_messages_when_parsed_should_refuse() {
        for bad in [
            &b""[..],
            b"n,,",
            b"x,,n=u,r=a",
            b"n,,n=,r=a",
            b"n,,n=u",
            b"n,,n=a=b,r=x",
            b"\xff",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_client_first(b"p=tls,,n=u,r=a"),
            Err(ScramError::ChannelBinding)
        );
        assert!(parse_client_final(b"c=biws,r=x").is_err());
        assert!(parse_client_final(b"c=biws,r=x,p=!!").is_err());
        assert_eq!(parse_plain(b"\0u\0p").unwrap(), ("u".to_string(), &b"p"[..]));
        assert!(parse_plain(b"u").is_err());
        assert!(parse_plain(b"\0\0p").is_err());
    }
}
