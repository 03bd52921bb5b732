//! The HTTP front end: InfluxDB-compatible write endpoints (`/write`, `/api/v2/write`,
//! `/api/v3/write_lp`), Prometheus remote write (`/api/v1/write`), and `/health`, `/ping`.
//!
//! Answers follow InfluxDB: `204` when every line was stored; `400` with
//! `{"error": …, "data": [{"original_line", "line_number", "error_message"}]}` when some
//! lines were rejected (the good ones are stored unless `accept_partial=false`); `413`
//! over the body limit. Bad input never gets a `5xx`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{Classify, Kind, SqlState};
use crate::ingest::{Api, Ingester, Precision, WriteParams};

/// HTTP settings.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (after gzip decoding too).
    pub max_body_bytes: usize,
    /// How long a request's headers may take to arrive, counted from when the server
    /// waits for them — so it also closes keep-alive connections idle that long.
    pub header_read_timeout: crate::duration::Duration,
    /// The longest gap between two pieces of a request body; past it, 408.
    pub body_read_timeout: crate::duration::Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 32 << 20,
            header_read_timeout: crate::duration::Duration::from_secs(30),
            body_read_timeout: crate::duration::Duration::from_secs(30),
        }
    }
}

struct AppState {
    ingester: Arc<Ingester>,
    config: HttpConfig,
}

/// Builds the router.
pub fn router(ingester: Arc<Ingester>, config: HttpConfig) -> Router {
    let limit = config.max_body_bytes;
    let body_timeout = config.body_read_timeout.get();
    let state = Arc::new(AppState { ingester, config });
    Router::new()
        .route("/write", post(write_v1))
        .route("/api/v2/write", post(write_v2))
        .route("/api/v3/write_lp", post(write_v3))
        .route("/api/v1/write", post(remote_write))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/ping", get(ping).head(ping))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_request(
            move |request: axum::extract::Request| async move {
                request.map(|body| axum::body::Body::new(IdleTimeout::new(body, body_timeout)))
            },
        ))
        .with_state(state)
}

/// Serves HTTP/1 until `shutdown` fires, then lets the requests in flight finish. A
/// connection's headers must arrive within `header_read_timeout` (hyper's timer, which
/// also runs while a keep-alive connection waits for its next request), so sockets that
/// send nothing or dribble headers are closed; no slot or lock is held meanwhile.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: std::time::Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(socket), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A request body that fails with [`BodyTimedOut`] when no part of it arrives for the
/// configured gap (a client that stops sending mid-body).
struct IdleTimeout {
    inner: axum::body::Body,
    gap: std::time::Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(inner: axum::body::Body, gap: std::time::Duration) -> IdleTimeout {
        IdleTimeout {
            inner,
            gap,
            timer: Box::pin(tokio::time::sleep(gap)),
        }
    }
}

/// The error of a body whose sender went quiet.
#[derive(Debug)]
struct BodyTimedOut(std::time::Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body stopped arriving: nothing for {}",
            crate::duration::format_secs(self.0.as_secs().max(1))
        )
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for IdleTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.gap;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.gap))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A whole request body, or the error that stopped it: 413 past `max_body_bytes`, 408
/// when the client stopped sending, 400 for a connection that broke — each as JSON like
/// every other error, not axum's plain-text rejections.
struct RequestBody(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RequestBody {
    type Rejection = HttpError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, HttpError> {
        let rejection = match Bytes::from_request(request, state).await {
            Ok(body) => return Ok(RequestBody(body)),
            Err(rejection) => rejection,
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
        while let Some(e) = cause {
            if let Some(timed_out) = e.downcast_ref::<BodyTimedOut>() {
                return Err(HttpError::new(
                    SqlState::QUERY_CANCELED,
                    timed_out.to_string(),
                ));
            }
            cause = e.source();
        }
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Err(HttpError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                "request body too large: over the server's limit (http.max_body_bytes)",
            ));
        }
        Err(HttpError::invalid(format!(
            "reading the request body failed: {}",
            rejection.body_text()
        )))
    }
}

/// Sundial's own metrics, Prometheus text format.
async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(s.ingester.metrics(), s.ingester.engine()),
    )
        .into_response()
}

async fn health() -> Response {
    (
        StatusCode::OK,
        axum::Json(
            json!({"status": "pass", "name": "sundial", "version": env!("CARGO_PKG_VERSION")}),
        ),
    )
        .into_response()
}

async fn ping() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            "X-Influxdb-Version",
            "sundial-".to_string() + env!("CARGO_PKG_VERSION"),
        )],
    )
        .into_response()
}

/// A request-level error, sent as `{"error": message, "sqlstate": code}` with the status
/// of its kind. Every handler's error leaves through here: the kind → status mapping is
/// [`status`], the SQLSTATE is the one [`crate::error`] gives, and internal details are
/// logged and replaced by a generic message.
#[derive(Debug)]
pub struct HttpError {
    state: SqlState,
    message: String,
}

impl HttpError {
    fn new(state: SqlState, message: impl Into<String>) -> HttpError {
        HttpError {
            state,
            message: message.into(),
        }
    }

    /// A malformed request (a missing or invalid parameter, an undecodable body).
    fn invalid(message: impl Into<String>) -> HttpError {
        HttpError::new(SqlState::INVALID_PARAMETER_VALUE, message)
    }
}

impl<E: Classify> From<E> for HttpError {
    fn from(e: E) -> HttpError {
        let state = e.sqlstate();
        if state.kind() == Kind::Internal || state.kind() == Kind::Unavailable {
            tracing::error!(error = %e, "request failed");
            return HttpError::new(
                state,
                "the request could not be completed; see the server log",
            );
        }
        HttpError::new(state, e.to_string())
    }
}

/// The HTTP status of an error kind.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::InvalidInput => StatusCode::BAD_REQUEST,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::AlreadyExists => StatusCode::CONFLICT,
        // What HTTP callers can ask for that Sundial does not do is a representation
        // (a Content-Encoding, a format).
        Kind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::LimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        Kind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({"error": self.message, "sqlstate": self.state.code()}));
        let status = status(self.state.kind());
        if self.state.kind() == Kind::Overloaded {
            // InfluxDB clients and Telegraf back off on 503 with Retry-After.
            return (status, [(header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}

type Params = Query<HashMap<String, String>>;

/// The non-empty query parameter `name`, or the error naming it.
fn required<'q>(
    q: &'q HashMap<String, String>,
    name: &str,
    what: &str,
) -> Result<&'q str, HttpError> {
    q.get(name)
        .map(String::as_str)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            HttpError::invalid(format!(
                "{what} is required: pass the query parameter \"{name}\""
            ))
        })
}

async fn write_v1(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, HttpError> {
    let db = required(&q, "db", "database")?;
    let request = WriteRequest::influx(db, q.get("precision"), Api::V1);
    write(&s, request, &headers, body).await
}

async fn write_v2(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, HttpError> {
    let db = required(&q, "bucket", "bucket")?;
    let request = WriteRequest::influx(db, q.get("precision"), Api::V2);
    write(&s, request, &headers, body).await
}

async fn write_v3(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, HttpError> {
    let db = required(&q, "db", "database")?;
    let flag = |name: &str, default: bool| -> Result<bool, HttpError> {
        match q.get(name).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(HttpError::invalid(format!(
                "invalid value {other:?} for \"{name}\": expected true or false"
            ))),
        }
    };
    let request = WriteRequest {
        db,
        precision: q.get("precision"),
        api: Api::V3,
        accept_partial: flag("accept_partial", true)?,
        sync: !flag("no_sync", false)?,
    };
    write(&s, request, &headers, body).await
}

/// Prometheus remote write 1.0 (`POST /api/v1/write`, snappy + protobuf), into `?db=`
/// (default `sundial`). 204 when stored; 400 for a body that does not decode or samples
/// that do not fit their tables (Prometheus does not retry 4xx); 5xx only for storage
/// failures, which Prometheus retries.
async fn remote_write(
    State(s): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
    RequestBody(body): RequestBody,
) -> Result<Response, HttpError> {
    let db = q
        .get("db")
        .map(String::as_str)
        .unwrap_or(crate::query::DEFAULT_DATABASE);
    let rejected = s
        .ingester
        .write_remote(db, body, s.config.max_body_bytes)
        .await??;
    if rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(HttpError::invalid(format!(
        "{} samples rejected; first: {}",
        rejected.len(),
        rejected[0]
    )))
}

/// One write request's parameters, as its endpoint read them.
struct WriteRequest<'q> {
    db: &'q str,
    precision: Option<&'q String>,
    api: Api,
    accept_partial: bool,
    sync: bool,
}

impl<'q> WriteRequest<'q> {
    /// InfluxDB 1.x and 2.x writes: partial, durable.
    fn influx(db: &'q str, precision: Option<&'q String>, api: Api) -> WriteRequest<'q> {
        WriteRequest {
            db,
            precision,
            api,
            accept_partial: true,
            sync: true,
        }
    }
}

async fn write(
    s: &AppState,
    request: WriteRequest<'_>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let WriteRequest {
        db,
        precision,
        api,
        accept_partial,
        sync,
    } = request;
    let precision = match precision {
        None => {
            if api == Api::V3 {
                Precision::Auto
            } else {
                Precision::Nanosecond
            }
        }
        Some(p) => Precision::parse(p, api)
            .ok_or_else(|| HttpError::invalid(format!("invalid precision {p:?}")))?,
    };
    let body = decode_body(headers, body, s.config.max_body_bytes)?;
    let params = WriteParams {
        precision,
        accept_partial,
        sync,
    };
    let summary = s.ingester.write_lp(db, body, params).await?;
    if summary.errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut message = if accept_partial {
        "partial write of line protocol occurred".to_string()
    } else {
        "parsing failed for write_lp endpoint: no lines were stored".to_string()
    };
    // A body of many bad lines must not answer with a larger body still: the first
    // MAX_LISTED_ERRORS are listed, with the count of all.
    let rejected = summary.errors.len();
    if rejected > MAX_LISTED_ERRORS {
        message +=
            &format!(" ({rejected} lines were rejected; the first {MAX_LISTED_ERRORS} are listed)");
    }
    let listed = &summary.errors[..rejected.min(MAX_LISTED_ERRORS)];
    // InfluxDB's partial-write body, with the SQLSTATE of the rejected lines' kind.
    Ok((
        status(Kind::InvalidInput),
        axum::Json(json!({
            "error": message,
            "sqlstate": SqlState::INVALID_PARAMETER_VALUE.code(),
            "data": listed,
        })),
    )
        .into_response())
}

/// Rejected lines listed in one error body.
const MAX_LISTED_ERRORS: usize = 100;

fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, HttpError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(&body[..]).take(limit as u64 + 1);
            if let Err(e) = decoder.read_to_end(&mut out) {
                return Err(HttpError::invalid(format!("invalid gzip body: {e}")));
            }
            if out.len() > limit {
                return Err(HttpError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    format!("decompressed body exceeds the limit of {limit} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err(HttpError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("unsupported Content-Encoding {other:?}: use gzip or none"),
        )),
    }
}
