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

use crate::ingest::{Api, Ingester, Precision, WriteParams};

/// HTTP settings.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (after gzip decoding too).
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 32 << 20,
        }
    }
}

struct AppState {
    ingester: Ingester,
    config: HttpConfig,
}

/// Builds the router.
pub fn router(ingester: Ingester, config: HttpConfig) -> Router {
    let limit = config.max_body_bytes;
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
        .with_state(state)
}

/// Serves HTTP until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Sundial's own metrics, Prometheus text format.
async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(s.ingester.engine()),
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

/// A request-level error: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

fn fail(status: StatusCode, message: impl Into<String>) -> HttpError {
    HttpError {
        status,
        message: message.into(),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    fail(status, message).into_response()
}

type Params = Query<HashMap<String, String>>;

async fn write_v1(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(db) = q.get("db").filter(|d| !d.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "database is required: pass the query parameter \"db\"",
        );
    };
    write(
        &s,
        db,
        q.get("precision"),
        Api::V1,
        true,
        true,
        &headers,
        body,
    )
    .await
}

async fn write_v2(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(db) = q.get("bucket").filter(|d| !d.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bucket is required: pass the query parameter \"bucket\"",
        );
    };
    write(
        &s,
        db,
        q.get("precision"),
        Api::V2,
        true,
        true,
        &headers,
        body,
    )
    .await
}

async fn write_v3(
    State(s): State<Arc<AppState>>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(db) = q.get("db").filter(|d| !d.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "database is required: pass the query parameter \"db\"",
        );
    };
    let flag = |name: &str, default: bool| -> Result<bool, HttpError> {
        match q.get(name).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(fail(
                StatusCode::BAD_REQUEST,
                format!("invalid value {other:?} for \"{name}\": expected true or false"),
            )),
        }
    };
    let accept_partial = match flag("accept_partial", true) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let no_sync = match flag("no_sync", false) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    write(
        &s,
        db,
        q.get("precision"),
        Api::V3,
        accept_partial,
        !no_sync,
        &headers,
        body,
    )
    .await
}

/// Prometheus remote write 1.0 (`POST /api/v1/write`, snappy + protobuf), into `?db=`
/// (default `sundial`). 204 when stored; 400 for a body that does not decode or samples
/// that do not fit their tables (Prometheus does not retry 4xx); 5xx only for storage
/// failures, which Prometheus retries.
async fn remote_write(
    State(s): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let db = q
        .get("db")
        .map(String::as_str)
        .unwrap_or(crate::storage::DEFAULT_DATABASE);
    match s.ingester.write_remote(db, body).await {
        Ok(Ok(rejected)) if rejected.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(rejected)) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} samples rejected; first: {}",
                rejected.len(),
                rejected[0]
            ),
        ),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "remote write failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the write could not be stored; see the server log",
            )
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn write(
    s: &AppState,
    db: &str,
    precision: Option<&String>,
    api: Api,
    accept_partial: bool,
    sync: bool,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let precision = match precision {
        None => {
            if api == Api::V3 {
                Precision::Auto
            } else {
                Precision::Nanosecond
            }
        }
        Some(p) => match Precision::parse(p, api) {
            Some(p) => p,
            None => return error(StatusCode::BAD_REQUEST, format!("invalid precision {p:?}")),
        },
    };
    let body = match decode_body(headers, body, s.config.max_body_bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let params = WriteParams {
        precision,
        accept_partial,
        sync,
    };
    match s.ingester.write_lp(db, body, params).await {
        Ok(summary) if summary.errors.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(summary) => {
            let message = if accept_partial {
                "partial write of line protocol occurred"
            } else {
                "parsing failed for write_lp endpoint: no lines were stored"
            };
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": message, "data": summary.errors})),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "write failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the write could not be stored; see the server log",
            )
        }
    }
}

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
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!("invalid gzip body: {e}"),
                ));
            }
            if out.len() > limit {
                return Err(fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body exceeds the limit of {limit} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {other:?}: use gzip or none"),
        )),
    }
}
