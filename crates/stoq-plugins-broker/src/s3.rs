//! `s3`: payloads and results in S3-compatible object storage (AWS S3,
//! MinIO, Ceph RGW, moto, ...), with AWS Signature Version 4.
//!
//! - **Archiver** (destination): a payload is stored once under
//!   `<archive_prefix><sha256>` in `archive_bucket`: a `HEAD` first, and a
//!   `PUT` only when the object is missing. Returns the locator
//!   `{"bucket", "key", "sha256"}`.
//! - **Archiver** (source): `get` fetches the object the locator names
//!   (`key`, or the reference's `path`) and checks its SHA-256.
//! - **Connector**: each response as JSON under
//!   `<results_prefix><scan_id>` in `connector_bucket` (a re-delivered scan
//!   overwrites the same object).
//!
//! Requests that fail with 5xx, 429 or a network error are retried with
//! back-off (`retries`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, Archiver, ArchiverResponse, Bytes, Connector, ModuleDescriptor, OptionDoc,
    OptionError, Payload, PayloadMeta, PluginClass, PluginConfig, PluginInstance, PluginResult,
    Request, StoqResponse,
};

use crate::common::{self, perr, Backoff};
use crate::sigv4::{self, Credentials, SignRequest};

/// The plugin's name.
pub const NAME: &str = "s3";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "access_key",
        "",
        "access key id (default: $AWS_ACCESS_KEY_ID)",
    ),
    OptionDoc::new(
        "secret_key",
        "",
        "secret access key (default: $AWS_SECRET_ACCESS_KEY)",
    ),
    OptionDoc::new(
        "session_token",
        "",
        "session token for temporary credentials (default: $AWS_SESSION_TOKEN)",
    ),
    OptionDoc::new(
        "region",
        "",
        "region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)",
    ),
    OptionDoc::new(
        "endpoint",
        "",
        "endpoint URL, e.g. http://127.0.0.1:9000 (default: https://s3.<region>.amazonaws.com; $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL)",
    ),
    OptionDoc::new(
        "path_style",
        "",
        "path-style addressing (endpoint/bucket/key) instead of bucket.host; default true when an endpoint is set",
    ),
    OptionDoc::new(
        "archive_bucket",
        "",
        "archiver: bucket payloads are stored in",
    ),
    OptionDoc::new(
        "connector_bucket",
        "",
        "connector: bucket results are stored in",
    ),
    OptionDoc::new(
        "archive_prefix",
        "",
        "archiver: key prefix (key = prefix + sha256)",
    ),
    OptionDoc::new(
        "results_prefix",
        "",
        "connector: key prefix (key = prefix + scan_id)",
    ),
    OptionDoc::new(
        "use_sha",
        "true",
        "archiver: key by SHA-256 (no duplicate uploads); false: by payload id",
    ),
    OptionDoc::new(
        "create_buckets",
        "false",
        "create the buckets at first use if they do not exist",
    ),
    OptionDoc::new("timeout", "60", "seconds per HTTP request"),
    OptionDoc::new(
        "retries",
        "5",
        "attempts per request on 5xx, 429 or network errors",
    ),
];

/// The typed options.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub credentials: Credentials,
    pub region: String,
    pub endpoint: reqwest::Url,
    pub path_style: bool,
    pub archive_bucket: Option<String>,
    pub connector_bucket: Option<String>,
    pub archive_prefix: String,
    pub results_prefix: String,
    pub use_sha: bool,
    pub create_buckets: bool,
    pub timeout: Duration,
    pub retries: u32,
}

fn opt_or_env(cfg: &PluginConfig, key: &str, envs: &[&str]) -> Option<String> {
    cfg.get_str(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| {
            envs.iter()
                .filter_map(|e| std::env::var(e).ok())
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        })
}

fn bucket(cfg: &PluginConfig, key: &str) -> Result<Option<String>, OptionError> {
    cfg.parse_with(key, |v| {
        let v = v.trim();
        let ok = v.is_empty()
            || (v.len() >= 3
                && v.len() <= 63
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                }));
        if ok {
            Ok(v.to_string())
        } else {
            Err("not a valid bucket name (3-63 of a-z 0-9 . -)".into())
        }
    })
    .map(|b| b.filter(|b| !b.is_empty()))
}

impl S3Options {
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let region = opt_or_env(cfg, "region", &["AWS_REGION", "AWS_DEFAULT_REGION"])
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint_given = opt_or_env(
            cfg,
            "endpoint",
            &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
        );
        let endpoint_text = endpoint_given
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = reqwest::Url::parse(&endpoint_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| OptionError {
                plugin: cfg.name().to_string(),
                option: "endpoint".into(),
                value: endpoint_text.clone(),
                reason: "not an http(s) URL".into(),
            })?;
        let path_style = match cfg.get_str("path_style").map(str::trim) {
            None | Some("") => endpoint_given.is_some(),
            Some(_) => cfg.bool("path_style", false)?,
        };
        let credentials = Credentials {
            access_key: opt_or_env(cfg, "access_key", &["AWS_ACCESS_KEY_ID"]).unwrap_or_default(),
            secret_key: opt_or_env(cfg, "secret_key", &["AWS_SECRET_ACCESS_KEY"])
                .unwrap_or_default(),
            session_token: opt_or_env(cfg, "session_token", &["AWS_SESSION_TOKEN"]),
        };
        let timeout = cfg.seconds("timeout")?.unwrap_or(Duration::from_secs(60));
        Ok(S3Options {
            credentials,
            region,
            endpoint,
            path_style,
            archive_bucket: bucket(cfg, "archive_bucket")?,
            connector_bucket: bucket(cfg, "connector_bucket")?,
            archive_prefix: cfg.string("archive_prefix", ""),
            results_prefix: cfg.string("results_prefix", ""),
            use_sha: cfg.bool("use_sha", true)?,
            create_buckets: cfg.bool("create_buckets", false)?,
            timeout,
            retries: cfg.number::<u32>("retries", 5)?.max(1),
        })
    }
}

/// A minimal S3 client: HEAD/GET/PUT of objects and PUT of buckets.
#[derive(Debug, Clone)]
pub struct S3Client {
    name: String,
    opts: Arc<S3Options>,
    http: reqwest::Client,
}

/// What came back.
#[derive(Debug)]
pub struct S3Response {
    pub status: u16,
    pub body: Bytes,
}

impl S3Client {
    pub fn new(name: &str, opts: S3Options) -> Result<Self, String> {
        common::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(S3Client {
            name: name.to_string(),
            opts: Arc::new(opts),
            http,
        })
    }

    /// The URL and Host of `bucket`/`key` (key empty: the bucket itself).
    fn locate(&self, bucket: &str, key: &str) -> (reqwest::Url, String, String) {
        let ep = &self.opts.endpoint;
        let base_path = ep.path().trim_end_matches('/');
        let host = ep.host_str().unwrap_or_default();
        let port = ep.port().map(|p| format!(":{p}")).unwrap_or_default();
        let key_path = sigv4::uri_encode(key, true);
        let (host, path) = if self.opts.path_style {
            let path = if key.is_empty() {
                format!("{base_path}/{bucket}")
            } else {
                format!("{base_path}/{bucket}/{key_path}")
            };
            (format!("{host}{port}"), path)
        } else {
            (
                format!("{bucket}.{host}{port}"),
                format!("{base_path}/{key_path}"),
            )
        };
        let url = format!("{}://{host}{path}", ep.scheme());
        let url = reqwest::Url::parse(&url).unwrap_or_else(|_| ep.clone());
        (url, host, path)
    }

    /// Send one signed request, retrying 5xx/429/network errors.
    pub async fn request(
        &self,
        method: reqwest::Method,
        bucket: &str,
        key: &str,
        body: Option<(Bytes, String)>,
        content_type: Option<&str>,
    ) -> PluginResult<S3Response> {
        let (url, host, path) = self.locate(bucket, key);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut last = String::new();
        for attempt in 0..self.opts.retries {
            if attempt > 0 {
                backoff.wait().await;
            }
            let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
            let payload_sha = body
                .as_ref()
                .map(|(_, h)| h.as_str())
                .unwrap_or(sigv4::EMPTY_SHA256);
            let mut rb = self.http.request(method.clone(), url.clone());
            if !self.opts.credentials.access_key.is_empty() {
                let extra: Vec<(&str, &str)> = content_type
                    .map(|c| vec![("content-type", c)])
                    .unwrap_or_default();
                for (k, v) in sigv4::sign(
                    &SignRequest {
                        method: method.as_str(),
                        host: &host,
                        canonical_uri: &path,
                        query: &[],
                        headers: &extra,
                        payload_sha256: payload_sha,
                        amz_date: &amz_date,
                        region: &self.opts.region,
                        service: "s3",
                    },
                    &self.opts.credentials,
                ) {
                    rb = rb.header(k, v);
                }
            }
            if let Some(c) = content_type {
                rb = rb.header("content-type", c);
            }
            if let Some((b, _)) = &body {
                rb = rb.body(b.clone());
            }
            match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status >= 500 || status == 429 {
                        last = format!("HTTP {status}: {}", snippet(&body));
                        tracing::warn!("{}: {method} {url}: {last}; retrying", self.name);
                        continue;
                    }
                    return Ok(S3Response { status, body });
                }
                Err(e) => {
                    last = e.to_string();
                    tracing::warn!("{}: {method} {url}: {e}; retrying", self.name);
                }
            }
        }
        Err(perr(
            &self.name,
            format!(
                "{method} {url} failed after {} attempts: {last}",
                self.opts.retries
            ),
        ))
    }

    /// Create `bucket` unless it exists.
    pub async fn ensure_bucket(&self, bucket: &str) -> PluginResult<()> {
        let head = self
            .request(reqwest::Method::HEAD, bucket, "", None, None)
            .await?;
        if (200..300).contains(&head.status) {
            return Ok(());
        }
        let body = if self.opts.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.opts.region
            ))
        };
        let sha = sigv4::sha256_hex(&body);
        let r = self
            .request(reqwest::Method::PUT, bucket, "", Some((body, sha)), None)
            .await?;
        let text = String::from_utf8_lossy(&r.body);
        if (200..300).contains(&r.status) || text.contains("BucketAlreadyOwnedByYou") {
            Ok(())
        } else {
            Err(perr(
                &self.name,
                format!(
                    "cannot create bucket {bucket}: HTTP {}: {}",
                    r.status,
                    snippet(&r.body)
                ),
            ))
        }
    }

    /// Whether `bucket`/`key` exists.
    pub async fn exists(&self, bucket: &str, key: &str) -> PluginResult<bool> {
        let r = self
            .request(reqwest::Method::HEAD, bucket, key, None, None)
            .await?;
        match r.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            s => Err(perr(&self.name, format!("HEAD {bucket}/{key}: HTTP {s}"))),
        }
    }

    /// Store an object. `sha256_hex` is the body's SHA-256.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        sha256_hex: String,
        content_type: &str,
    ) -> PluginResult<()> {
        let r = self
            .request(
                reqwest::Method::PUT,
                bucket,
                key,
                Some((body, sha256_hex)),
                Some(content_type),
            )
            .await?;
        if (200..300).contains(&r.status) {
            Ok(())
        } else {
            Err(perr(
                &self.name,
                format!(
                    "PUT {bucket}/{key}: HTTP {}: {}",
                    r.status,
                    snippet(&r.body)
                ),
            ))
        }
    }

    /// Fetch an object; `None` when it does not exist.
    pub async fn get(&self, bucket: &str, key: &str) -> PluginResult<Option<Bytes>> {
        let r = self
            .request(reqwest::Method::GET, bucket, key, None, None)
            .await?;
        match r.status {
            200..=299 => Ok(Some(r.body)),
            404 => Ok(None),
            s => Err(perr(
                &self.name,
                format!("GET {bucket}/{key}: HTTP {s}: {}", snippet(&r.body)),
            )),
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `s3` archiver and connector.
#[derive(Debug)]
pub struct S3 {
    client: S3Client,
    buckets_ready: tokio::sync::OnceCell<()>,
}

impl S3 {
    pub fn new(name: &str, opts: S3Options) -> Result<Self, String> {
        Ok(S3 {
            client: S3Client::new(name, opts)?,
            buckets_ready: tokio::sync::OnceCell::new(),
        })
    }

    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn opts(&self) -> &S3Options {
        &self.client.opts
    }

    fn name(&self) -> &str {
        &self.client.name
    }

    async fn ready(&self) -> PluginResult<()> {
        if !self.opts().create_buckets {
            return Ok(());
        }
        self.buckets_ready
            .get_or_try_init(|| async {
                for b in [&self.opts().archive_bucket, &self.opts().connector_bucket]
                    .into_iter()
                    .flatten()
                {
                    self.client.ensure_bucket(b).await?;
                }
                Ok::<(), stoq_core::PluginError>(())
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Archiver for S3 {
    async fn archive(
        &self,
        payload: &Payload,
        _request: &Request,
    ) -> PluginResult<Option<ArchiverResponse>> {
        let bucket = self
            .opts()
            .archive_bucket
            .clone()
            .ok_or_else(|| perr(self.name(), "archive_bucket is not set"))?;
        self.ready().await?;
        let sha = common::hex(&payload.sha256());
        let key = if self.opts().use_sha {
            format!("{}{sha}", self.opts().archive_prefix)
        } else {
            format!("{}{}", self.opts().archive_prefix, payload.id())
        };
        if self.client.exists(&bucket, &key).await? {
            tracing::debug!("{}: {bucket}/{key} exists; not uploaded again", self.name());
        } else {
            self.client
                .put(
                    &bucket,
                    &key,
                    payload.content.clone(),
                    sha.clone(),
                    "application/octet-stream",
                )
                .await?;
        }
        Ok(Some(ArchiverResponse::with_results(json!({
            "bucket": bucket,
            "key": key,
            "sha256": sha,
        }))))
    }

    async fn get(&self, task: &ArchiverResponse) -> PluginResult<Option<Payload>> {
        let results = task
            .results
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| perr(self.name(), "the task has no results object"))?;
        let bucket = results
            .get("bucket")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.opts().archive_bucket.clone())
            .ok_or_else(|| perr(self.name(), "the task names no bucket"))?;
        let key = results
            .get("key")
            .or_else(|| results.get("path"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| perr(self.name(), "the task has no \"key\" (or \"path\") string"))?;
        let data = self
            .client
            .get(&bucket, key)
            .await?
            .ok_or_else(|| perr(self.name(), format!("{bucket}/{key} does not exist")))?;
        let payload = Payload::with_meta(
            data,
            PayloadMeta {
                extra_data: results.clone(),
                ..PayloadMeta::default()
            },
        );
        if let Some(expected) = results.get("sha256").and_then(Value::as_str) {
            let actual = common::hex(&payload.sha256());
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(perr(
                    self.name(),
                    format!("{bucket}/{key} has sha256 {actual}, the task expects {expected}"),
                ));
            }
        }
        Ok(Some(payload))
    }
}

#[async_trait]
impl Connector for S3 {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let bucket = self
            .opts()
            .connector_bucket
            .clone()
            .ok_or_else(|| perr(self.name(), "connector_bucket is not set"))?;
        self.ready().await?;
        let key = format!("{}{}", self.opts().results_prefix, response.scan_id);
        let mut text = stoq_core::to_json_compact(response);
        text.push('\n');
        let body = Bytes::from(text);
        let sha = sigv4::sha256_hex(&body);
        self.client
            .put(&bucket, &key, body, sha, "application/json")
            .await
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(
        NAME,
        &[PluginClass::Archiver, PluginClass::Connector],
        |cfg| {
            let plugin = Arc::new(
                S3::new(cfg.name(), S3Options::from_config(cfg)?)
                    .map_err(|e| perr(cfg.name(), e))?,
            );
            Ok(PluginInstance::new()
                .archiver(plugin.clone())
                .connector(plugin))
        },
    )
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "S3-compatible object storage: payloads under their SHA-256 (no duplicate uploads), results under their scan id",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(opts: &[(&str, &str)]) -> S3Client {
        S3Client::new(
            NAME,
            S3Options::from_config(&PluginConfig::new(NAME, opts.to_vec())).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn addressing_styles() {
        let c = client(&[
            ("endpoint", "http://127.0.0.1:9000"),
            ("region", "eu-west-1"),
        ]);
        assert!(c.opts.path_style);
        let (url, host, path) = c.locate("bkt", "ab cd/ef");
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/bkt/ab%20cd/ef");
        assert_eq!(host, "127.0.0.1:9000");
        assert_eq!(path, "/bkt/ab%20cd/ef");
        let c = client(&[("region", "eu-west-1"), ("access_key", "a")]);
        assert!(!c.opts.path_style);
        let (url, host, _) = c.locate("bkt", "k");
        assert_eq!(url.as_str(), "https://bkt.s3.eu-west-1.amazonaws.com/k");
        assert_eq!(host, "bkt.s3.eu-west-1.amazonaws.com");
    }

    #[test]
    fn bad_options() {
        for (k, v) in [
            ("endpoint", "ftp://x"),
            ("archive_bucket", "Bad_Bucket"),
            ("use_sha", "perhaps"),
        ] {
            let e = S3Options::from_config(&PluginConfig::new(NAME, [(k, v)])).unwrap_err();
            assert_eq!(e.option, k);
        }
    }
}
