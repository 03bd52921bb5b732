//! Password authentication and TLS for the Postgres endpoint.
//!
//! Users come from the config file (`[[users]]` with `name` and `password`). With users
//! configured, every connection must authenticate with the configured method:
//! SCRAM-SHA-256 (the default, as in PostgreSQL 14+), MD5 or cleartext `password` for
//! old clients. Without users, any user name is accepted (trust), which `serve` warns
//! about when the endpoint listens beyond loopback. TLS is offered when a certificate
//! and key are configured; otherwise an `SSLRequest` is answered `N`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};

/// A user allowed to connect.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// How passwords are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum AuthMethod {
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "md5")]
    Md5,
    /// Cleartext, for clients that know nothing else (use with TLS).
    #[serde(rename = "password")]
    Password,
}

/// The configured users, with what each method needs precomputed.
#[derive(Debug, Default)]
pub struct Users {
    pub method: AuthMethod,
    passwords: HashMap<String, String>,
    /// Per user: SCRAM salt and salted password (PBKDF2 is slow on purpose; once per user).
    scram: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Users {
    pub fn new(users: &[User], method: AuthMethod) -> Users {
        let mut scram = HashMap::new();
        if method == AuthMethod::ScramSha256 {
            for u in users {
                let salt: [u8; 16] = rand_bytes();
                let salted = gen_salted_password(&u.password, &salt, SCRAM_ITERATIONS);
                scram.insert(u.name.clone(), (salt.to_vec(), salted));
            }
        }
        Users {
            method,
            passwords: users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            scram,
        }
    }

    /// True when connections must authenticate.
    pub fn required(&self) -> bool {
        !self.passwords.is_empty()
    }

    fn password_of(&self, login: &LoginInfo) -> PgWireResult<(&str, &str)> {
        let user = login.user().unwrap_or_default();
        // An unknown user gets the same answer as a wrong password, as in PostgreSQL.
        let (name, password) = self
            .passwords
            .get_key_value(user)
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_string()))?;
        Ok((name.as_str(), password.as_str()))
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS provides random bytes");
    out
}

/// Answers pgwire's password lookups for one method.
#[derive(Debug, Clone)]
pub struct Source {
    pub users: Arc<Users>,
}

#[async_trait]
impl AuthSource for Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let (name, password) = self.users.password_of(login)?;
        Ok(match self.users.method {
            AuthMethod::ScramSha256 => {
                let (salt, salted) = self
                    .users
                    .scram
                    .get(name)
                    .cloned()
                    .ok_or_else(|| PgWireError::InvalidPassword(name.to_string()))?;
                Password::new(Some(salt), salted)
            }
            AuthMethod::Md5 => {
                let salt: [u8; 4] = rand_bytes();
                let hashed = pgwire::api::auth::md5pass::hash_md5_password(name, password, &salt);
                Password::new(Some(salt.to_vec()), hashed.into_bytes())
            }
            AuthMethod::Password => Password::new(None, password.as_bytes().to_vec()),
        })
    }
}

/// Builds the TLS acceptor from PEM files (certificate chain; PKCS#8, PKCS#1 or SEC1 key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<pgwire::tokio::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("TLS certificate/key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
