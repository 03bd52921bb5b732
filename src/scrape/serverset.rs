//! `serverset_sd_configs`: targets registered in ZooKeeper as Finagle/Aurora serversets,
//! as Prometheus discovers them. Every znode under a configured path whose data is a
//! serverset member (`{"serviceEndpoint": {"host", "port"}, "additionalEndpoints": {…},
//! "status", "shard"}`) is one target, `host:port` of its service endpoint, with
//! `__meta_serverset_path`, `__meta_serverset_endpoint_host`/`_port`,
//! `__meta_serverset_endpoint_host_<name>`/`_port_<name>`, `__meta_serverset_status` and
//! `__meta_serverset_shard`.
//!
//! The ZooKeeper side is a small client of the wire protocol (jute encoding over TCP):
//! a session, `getChildren`/`getData`/`exists` with watches, and pings. A watch event
//! makes the watcher read the tree again; a lost connection is retried on the next server
//! of the list, keeping the last targets meanwhile.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::StaticConfig;

/// One `serverset_sd_configs` entry, with Prometheus' field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServersetSdConfig {
    /// ZooKeeper servers, `host:port`.
    pub servers: Vec<String>,
    /// Paths whose descendants are serverset members.
    pub paths: Vec<String>,
    /// Session timeout (default 10s).
    pub timeout: Option<String>,
}

impl ServersetSdConfig {
    /// Identifies the watcher for this entry across reloads.
    pub fn key(&self) -> String {
        format!(
            "zk://{}{}#{}",
            self.servers.join(","),
            self.paths.join(","),
            self.timeout.as_deref().unwrap_or("")
        )
    }

    pub fn session_timeout(&self) -> Duration {
        self.timeout
            .as_deref()
            .and_then(|t| super::duration(t, "timeout").ok())
            .unwrap_or(Duration::from_secs(10))
    }
}

/// Nodes read per tree walk at most, so a huge tree cannot exhaust memory.
const MAX_NODES: usize = 100_000;
/// Frames larger than this end the connection (ZooKeeper's own jute.maxbuffer is 1 MiB).
const MAX_FRAME: usize = 16 << 20;

const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_GET_CHILDREN: i32 = 8;
const OP_PING: i32 = 11;
const XID_WATCH: i32 = -1;
const XID_PING: i32 = -2;
const ERR_NO_NODE: i32 = -101;
/// xid i32, zxid i64, err i32.
const REPLY_HEADER: usize = 16;

/// A ZooKeeper reply error (`KeeperException` codes).
#[derive(Debug)]
pub enum ZkError {
    Io(std::io::Error),
    Protocol(String),
    Code(i32),
}

impl std::fmt::Display for ZkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZkError::Io(e) => write!(f, "{e}"),
            ZkError::Protocol(m) => write!(f, "protocol error: {m}"),
            ZkError::Code(c) => write!(f, "ZooKeeper error code {c}"),
        }
    }
}

impl From<std::io::Error> for ZkError {
    fn from(e: std::io::Error) -> Self {
        ZkError::Io(e)
    }
}

/// One ZooKeeper session on one connection.
pub struct Session {
    stream: TcpStream,
    buf: BytesMut,
    xid: i32,
    timeout: Duration,
    /// A watch fired since the last [`Session::take_watch`].
    watched: bool,
}

fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i32(s.len() as i32);
    out.put_slice(s.as_bytes());
}

fn get_i32(b: &mut &[u8]) -> Result<i32, ZkError> {
    if b.len() < 4 {
        return Err(ZkError::Protocol("short reply".into()));
    }
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Result<i64, ZkError> {
    if b.len() < 8 {
        return Err(ZkError::Protocol("short reply".into()));
    }
    Ok(b.get_i64())
}

/// A jute buffer or string: i32 length (-1 = null), then bytes.
fn get_bytes(b: &mut &[u8]) -> Result<Vec<u8>, ZkError> {
    let n = get_i32(b)?;
    if n < 0 {
        return Ok(Vec::new());
    }
    let n = n as usize;
    if b.len() < n {
        return Err(ZkError::Protocol("short reply".into()));
    }
    let out = b[..n].to_vec();
    b.advance(n);
    Ok(out)
}

/// A getChildren reply: a count, then that many strings. The count comes from the
/// server, so it sizes nothing until the strings are there (each takes 4 bytes or more).
fn parse_children(reply: &[u8]) -> Result<Vec<String>, ZkError> {
    let mut b = reply;
    let n = get_i32(&mut b)?.max(0) as usize;
    if n > b.len() / 4 {
        return Err(ZkError::Protocol(format!(
            "{n} children announced in a reply of {} bytes",
            reply.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(String::from_utf8_lossy(&get_bytes(&mut b)?).into_owned());
    }
    Ok(out)
}

impl Session {
    /// Connects to `server` and opens a new session.
    pub async fn connect(server: &str, timeout: Duration) -> Result<Session, ZkError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| ZkError::Protocol(format!("connect to {server} timed out")))??;
        stream.set_nodelay(true)?;
        let mut s = Session {
            stream,
            buf: BytesMut::new(),
            xid: 0,
            timeout,
            watched: false,
        };
        let mut req = BytesMut::new();
        req.put_i32(0); // protocolVersion
        req.put_i64(0); // lastZxidSeen
        req.put_i32(timeout.as_millis().min(i32::MAX as u128) as i32);
        req.put_i64(0); // sessionId: new session
        req.put_i32(16); // passwd
        req.put_slice(&[0; 16]);
        req.put_u8(0); // readOnly
        s.send(&req).await?;
        let frame = tokio::time::timeout(timeout, s.next_frame())
            .await
            .map_err(|_| ZkError::Protocol("no handshake answer".into()))??;
        let mut b = &frame[..];
        let _version = get_i32(&mut b)?;
        let negotiated = get_i32(&mut b)?;
        let session_id = get_i64(&mut b)?;
        if negotiated <= 0 || session_id == 0 {
            return Err(ZkError::Protocol("session refused".into()));
        }
        s.timeout = Duration::from_millis(negotiated as u64);
        Ok(s)
    }

    /// The session timeout the server granted.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&mut self, body: &[u8]) -> Result<(), ZkError> {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(body);
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// The next frame; cancel-safe (bytes read so far stay in the buffer).
    async fn next_frame(&mut self) -> Result<BytesMut, ZkError> {
        loop {
            if self.buf.len() >= 4 {
                let n = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                if n < 0 || n as usize > MAX_FRAME {
                    return Err(ZkError::Protocol(format!("bad frame length {n}")));
                }
                if self.buf.len() >= 4 + n as usize {
                    self.buf.advance(4);
                    return Ok(self.buf.split_to(n as usize));
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ZkError::Protocol("connection closed by the server".into()));
            }
        }
    }

    /// Notes a watch event or skips a ping answer (`None`); otherwise the reply's xid
    /// and error code (its body follows the [`REPLY_HEADER`] bytes).
    fn classify(&mut self, frame: &BytesMut) -> Result<Option<(i32, i32)>, ZkError> {
        let mut b = &frame[..];
        let xid = get_i32(&mut b)?;
        let _zxid = get_i64(&mut b)?;
        let err = get_i32(&mut b)?;
        match xid {
            XID_WATCH => {
                self.watched = true;
                Ok(None)
            }
            XID_PING => Ok(None),
            _ => Ok(Some((xid, err))),
        }
    }

    /// Sends a request and waits for its answer, noting watch events on the way.
    async fn call(&mut self, op: i32, body: &[u8]) -> Result<Vec<u8>, ZkError> {
        self.xid = self.xid.wrapping_add(1).max(1);
        let xid = self.xid;
        let mut req = BytesMut::with_capacity(body.len() + 8);
        req.put_i32(xid);
        req.put_i32(op);
        req.put_slice(body);
        self.send(&req).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next_frame())
                .await
                .map_err(|_| ZkError::Protocol("request timed out".into()))??;
            if let Some((got, err)) = self.classify(&frame)? {
                if got != xid {
                    return Err(ZkError::Protocol(format!("answer {got} to request {xid}")));
                }
                if err != 0 {
                    return Err(ZkError::Code(err));
                }
                return Ok(frame[REPLY_HEADER..].to_vec());
            }
        }
    }

    fn path_request(path: &str, watch: bool) -> BytesMut {
        let mut body = BytesMut::new();
        put_string(&mut body, path);
        body.put_u8(watch as u8);
        body
    }

    /// The node's children names, or `None` when it does not exist.
    pub async fn children(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<Option<Vec<String>>, ZkError> {
        match self
            .call(OP_GET_CHILDREN, &Self::path_request(path, watch))
            .await
        {
            Ok(reply) => parse_children(&reply).map(Some),
            Err(ZkError::Code(ERR_NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data, or `None` when it does not exist.
    pub async fn data(&mut self, path: &str, watch: bool) -> Result<Option<Vec<u8>>, ZkError> {
        match self
            .call(OP_GET_DATA, &Self::path_request(path, watch))
            .await
        {
            Ok(reply) => Ok(Some(get_bytes(&mut &reply[..])?)),
            Err(ZkError::Code(ERR_NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the node exists; with `watch`, its creation or deletion fires a watch.
    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<bool, ZkError> {
        match self.call(OP_EXISTS, &Self::path_request(path, watch)).await {
            Ok(_) => Ok(true),
            Err(ZkError::Code(ERR_NO_NODE)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until a watch fires (true) or `wait` passes (false), answering nothing.
    pub async fn wait_for_watch(&mut self, wait: Duration) -> Result<bool, ZkError> {
        if std::mem::take(&mut self.watched) {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.next_frame()).await {
                Err(_) => return Ok(false),
                Ok(frame) => {
                    self.classify(&frame?)?;
                    if std::mem::take(&mut self.watched) {
                        return Ok(true);
                    }
                }
            }
        }
    }

    pub async fn ping(&mut self) -> Result<(), ZkError> {
        let mut req = BytesMut::new();
        req.put_i32(XID_PING);
        req.put_i32(OP_PING);
        self.send(&req).await
    }
}

/// The serverset member format (JSON; the Thrift form is not supported, as in Prometheus).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    service_endpoint: Endpoint,
    #[serde(default)]
    additional_endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    shard: i64,
}

#[derive(Debug, Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

/// The target a member node describes, or why it is not one.
pub fn parse_member(path: &str, data: &[u8]) -> Result<StaticConfig, String> {
    let m: Member = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let host_port = |e: &Endpoint| {
        if e.host.contains(':') && !e.host.starts_with('[') {
            format!("[{}]:{}", e.host, e.port)
        } else {
            format!("{}:{}", e.host, e.port)
        }
    };
    let mut labels = BTreeMap::new();
    labels.insert("__meta_serverset_path".into(), path.to_string());
    labels.insert(
        "__meta_serverset_endpoint_host".into(),
        m.service_endpoint.host.clone(),
    );
    labels.insert(
        "__meta_serverset_endpoint_port".into(),
        m.service_endpoint.port.to_string(),
    );
    for (name, e) in &m.additional_endpoints {
        let name = super::relabel::sanitize_label_name(name);
        labels.insert(
            format!("__meta_serverset_endpoint_host_{name}"),
            e.host.clone(),
        );
        labels.insert(
            format!("__meta_serverset_endpoint_port_{name}"),
            e.port.to_string(),
        );
    }
    labels.insert("__meta_serverset_status".into(), m.status);
    labels.insert("__meta_serverset_shard".into(), m.shard.to_string());
    Ok(StaticConfig {
        targets: vec![host_port(&m.service_endpoint)],
        labels,
    })
}

/// Reads every node under `root` (watching each), and returns the members found.
async fn read_tree(session: &mut Session, root: &str) -> Result<Vec<StaticConfig>, ZkError> {
    let root = if root.len() > 1 {
        root.trim_end_matches('/')
    } else {
        root
    };
    let mut out = Vec::new();
    if !session.exists(root, true).await? {
        return Ok(out);
    }
    let mut stack = vec![root.to_string()];
    let mut seen = 0;
    while let Some(path) = stack.pop() {
        seen += 1;
        if seen > MAX_NODES {
            tracing::warn!(
                root,
                "serverset tree larger than {MAX_NODES} nodes; rest skipped"
            );
            break;
        }
        // A node that went away between listing and reading is simply skipped.
        let Some(children) = session.children(&path, true).await? else {
            continue;
        };
        if path != root
            && let Some(data) = session.data(&path, true).await?
            && !data.is_empty()
        {
            match parse_member(&path, &data) {
                Ok(g) => out.push(g),
                Err(e) => tracing::debug!(%path, error = %e, "not a serverset member"),
            }
        }
        for c in children.into_iter().rev() {
            stack.push(if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            });
        }
    }
    Ok(out)
}

/// Keeps the members under `config.paths` current: `publish` gets the whole list after
/// each change, until `cancel`. Connection failures are retried (next server, growing
/// back-off up to 10 s); the last list stays meanwhile.
pub async fn watch(
    config: ServersetSdConfig,
    publish: impl Fn(Vec<StaticConfig>),
    cancel: CancellationToken,
) {
    let mut next_server = 0;
    let mut backoff = Duration::from_millis(200);
    let mut last: Option<Vec<StaticConfig>> = None;
    while !config.servers.is_empty() {
        let server = config.servers[next_server % config.servers.len()].clone();
        next_server += 1;
        tokio::select! {
            Err(e) = follow(&server, &config, &publish, &mut last, &mut backoff) => {
                tracing::warn!(%server, error = %e, "serverset discovery: ZooKeeper connection lost; keeping the last targets");
            }
            _ = cancel.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One session: reads the trees, publishes changes, waits for a watch (pinging), again.
async fn follow(
    server: &str,
    config: &ServersetSdConfig,
    publish: &impl Fn(Vec<StaticConfig>),
    last: &mut Option<Vec<StaticConfig>>,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, ZkError> {
    let mut session = Session::connect(server, config.session_timeout()).await?;
    tracing::info!(%server, "serverset discovery connected to ZooKeeper");
    let ping_every = session.timeout() / 3;
    loop {
        let mut groups = Vec::new();
        for path in &config.paths {
            groups.extend(read_tree(&mut session, path).await?);
        }
        if last.as_ref() != Some(&groups) {
            publish(groups.clone());
            *last = Some(groups);
        }
        // A good read: the next failure starts with a short pause again.
        *backoff = Duration::from_millis(200);
        while !session.wait_for_watch(ping_every).await? {
            session.ping().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_labels() {
        let data = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":8080},
            "additionalEndpoints":{"admin":{"host":"10.0.0.1","port":9990}},
            "status":"ALIVE","shard":3}"#;
        let g = parse_member("/aurora/web/member_0001", data).unwrap();
        assert_eq!(g.targets, vec!["10.0.0.1:8080"]);
        assert_eq!(g.labels["__meta_serverset_path"], "/aurora/web/member_0001");
        assert_eq!(g.labels["__meta_serverset_endpoint_port_admin"], "9990");
        assert_eq!(g.labels["__meta_serverset_status"], "ALIVE");
        assert_eq!(g.labels["__meta_serverset_shard"], "3");
        assert!(parse_member("/x", b"not json").is_err());
        let v6 = parse_member("/x", br#"{"serviceEndpoint":{"host":"::1","port":1}}"#).unwrap();
        assert_eq!(v6.targets, vec!["[::1]:1"]);
    }

    /// A server's counts size nothing: a reply announcing 2^31 children of nothing is an
    /// error, not a 48 GiB allocation; lengths past the reply are errors too.
    #[test]
    fn reply_counts_are_checked_against_the_reply() {
        let mut huge = Vec::new();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_children(&huge).is_err());
        let mut lying = Vec::new();
        lying.extend_from_slice(&2i32.to_be_bytes());
        lying.extend_from_slice(&1000i32.to_be_bytes());
        lying.extend_from_slice(b"abcd");
        assert!(parse_children(&lying).is_err());
        let mut ok = Vec::new();
        ok.extend_from_slice(&2i32.to_be_bytes());
        for name in ["a", "member_1"] {
            ok.extend_from_slice(&(name.len() as i32).to_be_bytes());
            ok.extend_from_slice(name.as_bytes());
        }
        assert_eq!(parse_children(&ok).unwrap(), vec!["a", "member_1"]);
        assert!(parse_children(&[0, 0]).is_err());
    }
}
