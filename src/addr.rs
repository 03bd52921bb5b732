//! Listen addresses in config files and flags: written as text, held as `SocketAddr`.
//! A leaf: it imports nothing of Sundial.

use std::net::SocketAddr;

/// A listen address as users write it: `127.0.0.1:8086`, `[::1]:5433` or a host name
/// (`localhost:8086`), resolved once (an IPv4 address preferred).
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("invalid address {text:?}: {e} (use HOST:PORT)"))?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| format!("address {text:?} resolves to nothing"))
}

/// Serde for socket addresses written as text (see [`parse`]).
mod serde_impl {
    use std::net::SocketAddr;

    pub fn serialize<S: serde::Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional address.
    pub mod option {
        use std::net::SocketAddr;

        pub fn serialize<S: serde::Serializer>(
            a: &Option<SocketAddr>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match a {
                Some(a) => s.serialize_some(&a.to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SocketAddr>, D::Error> {
            let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
            text.map(|t| crate::addr::parse(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

pub use serde_impl::{deserialize, option, serialize};
