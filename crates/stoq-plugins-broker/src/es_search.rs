//! `es-search`: index results into Elasticsearch or OpenSearch with the
//! `_bulk` API.
//!
//! Each response becomes one document (or, with `split_results`, one
//! document per payload and worker, from [`StoqResponse::split`]) whose
//! `_id` is derived from the scan id, so a retried request or a re-delivered
//! scan overwrites the same documents instead of adding copies. The index
//! name is `es_index` rendered with the response's date (`stoq-%Y.%m.%d`),
//! or `<es_index>-YYYY-MM` with `index_by_month` as in the reference.
//!
//! A request that fails with 429, 5xx or a network error, and the items of
//! a bulk response that failed with 429 or 5xx, are sent again with
//! exponential back-off, at most `es_max_retries` times. Items rejected for
//! good (a mapping error, say) and retries that run out make `save` fail:
//! the engine records the failure, the scan's receipt says "unsaved", and a
//! broker provider leaves the message for another attempt. Nothing is
//! dropped silently.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stoq_core::{
    async_trait, Connector, ModuleDescriptor, OptionDoc, OptionError, PluginClass, PluginConfig,
    PluginInstance, PluginResult, StoqResponse,
};

use crate::common::{self, perr, Backoff, DatePattern};

/// The plugin's name.
pub const NAME: &str = "es-search";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "es_host",
        "http://127.0.0.1:9200",
        "comma list of node URLs (tried in turn); user:password@ in a URL is used for basic auth",
    ),
    OptionDoc::new(
        "es_index",
        "stoq",
        "index name; may hold a date pattern from the response time (%Y %m %d %H %j), e.g. stoq-%Y.%m.%d",
    ),
    OptionDoc::new(
        "index_by_month",
        "true",
        "when es_index has no date pattern: index <es_index>-YYYY-MM (as the reference)",
    ),
    OptionDoc::new(
        "es_options",
        "{}",
        "JSON: http_auth ([user, password] or \"user:password\"), api_key, headers ({name: value})",
    ),
    OptionDoc::new("es_username", "", "basic-auth user"),
    OptionDoc::new("es_password", "", "basic-auth password"),
    OptionDoc::new("es_api_key", "", "API key (Authorization: ApiKey ...)"),
    OptionDoc::new("es_timeout", "60", "seconds per request"),
    OptionDoc::new(
        "es_retry",
        "true",
        "retry 429/5xx/network errors and failed bulk items",
    ),
    OptionDoc::new("es_max_retries", "10", "retries per save, at most"),
    OptionDoc::new(
        "retry_backoff",
        "0.5",
        "seconds before the first retry; doubles each time, up to max_backoff",
    ),
    OptionDoc::new("max_backoff", "30", "longest wait between retries, in seconds"),
    OptionDoc::new(
        "split_results",
        "false",
        "one document per payload and worker (StoqResponse.split) instead of one per scan",
    ),
    OptionDoc::new(
        "refresh",
        "false",
        "ask for refresh=wait_for on each bulk request (tests; slows indexing)",
    ),
];

/// The typed options.
#[derive(Debug, Clone)]
pub struct EsOptions {
    pub hosts: Vec<reqwest::Url>,
    pub index: DatePattern,
    pub timeout: Duration,
    pub retry: bool,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    pub split_results: bool,
    pub refresh: bool,
    pub basic_auth: Option<(String, String)>,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
}

fn option_error(cfg: &PluginConfig, key: &str, value: &str, reason: &str) -> OptionError {
    OptionError {
        plugin: cfg.name().to_string(),
        option: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

impl EsOptions {
    pub fn from_config(cfg: &PluginConfig) -> Result<Self, OptionError> {
        let host_text = cfg.string("es_host", "http://127.0.0.1:9200");
        let mut hosts = Vec::new();
        let mut basic_auth = None;
        for h in stoq_core::options::split_list(&host_text) {
            let with_scheme = if h.contains("://") {
                h.clone()
            } else {
                format!("http://{h}")
            };
            let mut url = reqwest::Url::parse(&with_scheme)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| option_error(cfg, "es_host", &host_text, "not an http(s) URL"))?;
            if !url.username().is_empty() {
                basic_auth = Some((
                    url.username().to_string(),
                    url.password().unwrap_or_default().to_string(),
                ));
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            hosts.push(url);
        }
        if hosts.is_empty() {
            return Err(option_error(cfg, "es_host", &host_text, "no host given"));
        }
        let raw_index = cfg.string("es_index", "stoq");
        let index_text = if raw_index.contains('%') || !cfg.bool("index_by_month", true)? {
            raw_index.clone()
        } else {
            format!("{raw_index}-%Y-%m")
        };
        let index = DatePattern::parse(&index_text)
            .and_then(|p| {
                let sample = p.render("2000-01-01T00:00:00+00:00");
                let bad = sample.is_empty()
                    || sample.starts_with(['-', '_', '+'])
                    || sample == "."
                    || sample == ".."
                    || sample.chars().any(|c| {
                        c.is_ascii_uppercase()
                            || matches!(c, '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':')
                    });
                if bad {
                    Err("not a valid index name (lowercase, no \\ / * ? \" < > | space , # :, not starting with - _ +)".into())
                } else {
                    Ok(p)
                }
            })
            .map_err(|r: String| option_error(cfg, "es_index", &raw_index, &r))?;
        let mut api_key = cfg
            .get_str("es_api_key")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let mut headers = Vec::new();
        if let Some(user) = cfg
            .get_str("es_username")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            basic_auth = Some((user.to_string(), cfg.string("es_password", "")));
        }
        if let Some(v) = cfg.json("es_options")? {
            let text = cfg.string("es_options", "");
            let obj = v
                .as_object()
                .ok_or_else(|| option_error(cfg, "es_options", &text, "must be a JSON object"))?;
            match obj.get("http_auth") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    let (u, p) = s.split_once(':').unwrap_or((s.as_str(), ""));
                    basic_auth = Some((u.to_string(), p.to_string()));
                }
                Some(Value::Array(a)) if a.len() == 2 => {
                    basic_auth = Some((
                        a[0].as_str().unwrap_or_default().to_string(),
                        a[1].as_str().unwrap_or_default().to_string(),
                    ));
                }
                Some(_) => {
                    return Err(option_error(
                        cfg,
                        "es_options",
                        &text,
                        "http_auth must be \"user:password\" or [user, password]",
                    ))
                }
            }
            if let Some(k) = obj.get("api_key").and_then(Value::as_str) {
                api_key = Some(k.to_string());
            }
            if let Some(h) = obj.get("headers").and_then(Value::as_object) {
                for (k, v) in h {
                    headers.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
                }
            }
        }
        let secs = |key: &str, default: f64| -> Result<Duration, OptionError> {
            let v: f64 = cfg.number(key, default)?;
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(option_error(
                    cfg,
                    key,
                    &v.to_string(),
                    "must be >= 0 seconds",
                ))
            }
        };
        Ok(EsOptions {
            hosts,
            index,
            timeout: cfg
                .seconds("es_timeout")?
                .unwrap_or(Duration::from_secs(60)),
            retry: cfg.bool("es_retry", true)?,
            max_retries: cfg.number("es_max_retries", 10)?,
            retry_backoff: secs("retry_backoff", 0.5)?,
            max_backoff: secs("max_backoff", 30.0)?,
            split_results: cfg.bool("split_results", false)?,
            refresh: cfg.bool("refresh", false)?,
            basic_auth,
            api_key,
            headers,
        })
    }
}

/// One document to index.
#[derive(Debug, Clone)]
struct Doc {
    index: String,
    id: String,
    source: String,
}

/// The `es-search` connector.
#[derive(Debug)]
pub struct EsSearch {
    name: String,
    opts: Arc<EsOptions>,
    http: reqwest::Client,
}

/// How a bulk attempt went.
enum Attempt {
    /// Everything indexed.
    Done,
    /// These documents should be sent again (with why).
    Retry(Vec<Doc>, String),
    /// Failed for good.
    Fatal(String),
}

impl EsSearch {
    pub fn new(name: &str, opts: EsOptions) -> Result<Self, String> {
        common::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(EsSearch {
            name: name.to_string(),
            opts: Arc::new(opts),
            http,
        })
    }

    /// The index a response goes to.
    pub fn index_for(&self, response: &StoqResponse) -> String {
        self.opts.index.render(&response.time)
    }

    fn docs(&self, response: &StoqResponse) -> Vec<Doc> {
        let index = self.index_for(response);
        if self.opts.split_results {
            response
                .split()
                .into_iter()
                .enumerate()
                .map(|(i, r)| Doc {
                    index: index.clone(),
                    id: format!("{}-{i}", response.scan_id),
                    source: stoq_core::to_json_compact(&r),
                })
                .collect()
        } else {
            vec![Doc {
                index,
                id: response.scan_id.clone(),
                source: stoq_core::to_json_compact(response),
            }]
        }
    }

    async fn attempt(&self, host: &reqwest::Url, docs: Vec<Doc>) -> Attempt {
        let mut body = String::with_capacity(docs.iter().map(|d| d.source.len() + 96).sum());
        for d in &docs {
            body.push_str(&json!({"index": {"_index": d.index, "_id": d.id}}).to_string());
            body.push('\n');
            body.push_str(&d.source);
            body.push('\n');
        }
        let mut url = host.clone();
        {
            let path = format!("{}/_bulk", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        if self.opts.refresh {
            url.set_query(Some("refresh=wait_for"));
        }
        let mut rb = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some((u, p)) = &self.opts.basic_auth {
            rb = rb.basic_auth(u, Some(p));
        }
        if let Some(k) = &self.opts.api_key {
            rb = rb.header("authorization", format!("ApiKey {k}"));
        }
        for (k, v) in &self.opts.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(docs, format!("{url}: {e}")),
        };
        let status = resp.status().as_u16();
        let text = resp.bytes().await.unwrap_or_default();
        if status == 429 || status >= 500 {
            return Attempt::Retry(docs, format!("{url}: HTTP {status}: {}", short(&text)));
        }
        if !(200..300).contains(&status) {
            return Attempt::Fatal(format!("{url}: HTTP {status}: {}", short(&text)));
        }
        let parsed: Value = match serde_json::from_slice(&text) {
            Ok(v) => v,
            Err(e) => return Attempt::Retry(docs, format!("{url}: unreadable bulk response: {e}")),
        };
        if parsed.get("errors").and_then(Value::as_bool) == Some(false) {
            return Attempt::Done;
        }
        let items = parsed
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if items.len() != docs.len() {
            let why = format!(
                "{url}: bulk response has {} items for {} documents",
                items.len(),
                docs.len()
            );
            return Attempt::Retry(docs, why);
        }
        let mut retry = Vec::new();
        let mut reasons = Vec::new();
        let mut fatal = Vec::new();
        for (item, doc) in items.iter().zip(docs) {
            let r = item
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let st = r.get("status").and_then(Value::as_u64).unwrap_or(0);
            if (200..300).contains(&st) {
                continue;
            }
            let why = r
                .get("error")
                .map(|e| {
                    e.get("reason")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string())
                })
                .unwrap_or_default();
            if st == 429 || st >= 500 || st == 0 {
                reasons.push(format!("{} ({st}: {why})", doc.id));
                retry.push(doc);
            } else {
                fatal.push(format!("{} in {} ({st}: {why})", doc.id, doc.index));
            }
        }
        if !fatal.is_empty() {
            return Attempt::Fatal(format!(
                "{} document(s) rejected: {}",
                fatal.len(),
                fatal.join("; ")
            ));
        }
        if retry.is_empty() {
            Attempt::Done
        } else {
            Attempt::Retry(retry, format!("{url}: item errors: {}", reasons.join("; ")))
        }
    }

    /// Index documents, retrying what can be retried.
    async fn index(&self, mut docs: Vec<Doc>) -> PluginResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let total = docs.len();
        let mut backoff = Backoff::new(self.opts.retry_backoff, self.opts.max_backoff);
        let mut tries = 0u32;
        loop {
            let host = &self.opts.hosts[tries as usize % self.opts.hosts.len()];
            match self.attempt(host, docs).await {
                Attempt::Done => {
                    if tries > 0 {
                        tracing::info!(
                            "{}: indexed after {tries} retr{}",
                            self.name,
                            if tries == 1 { "y" } else { "ies" }
                        );
                    }
                    return Ok(());
                }
                Attempt::Fatal(why) => return Err(perr(&self.name, why)),
                Attempt::Retry(rest, why) => {
                    if !self.opts.retry || tries >= self.opts.max_retries {
                        return Err(perr(
                            &self.name,
                            format!(
                                "{} of {total} document(s) not indexed after {} attempt(s): {why}",
                                rest.len(),
                                tries + 1
                            ),
                        ));
                    }
                    tries += 1;
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        "{}: {why}; retrying {} document(s) in {:.1}s ({tries}/{})",
                        self.name,
                        rest.len(),
                        delay.as_secs_f64(),
                        self.opts.max_retries
                    );
                    tokio::time::sleep(delay).await;
                    docs = rest;
                }
            }
        }
    }
}

fn short(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(&body[..body.len().min(300)]);
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl Connector for EsSearch {
    async fn save(&self, response: &StoqResponse) -> PluginResult<()> {
        let docs = self.docs(response);
        self.index(docs).await
    }
}

/// The module descriptor.
pub fn descriptor() -> ModuleDescriptor {
    ModuleDescriptor::new(NAME, &[PluginClass::Connector], |cfg| {
        let plugin = Arc::new(
            EsSearch::new(cfg.name(), EsOptions::from_config(cfg)?)
                .map_err(|e| perr(cfg.name(), e))?,
        );
        Ok(PluginInstance::new().connector(plugin))
    })
    .version(crate::PLUGIN_VERSION)
    .author(crate::PLUGIN_AUTHOR)
    .description(
        "Index results into Elasticsearch/OpenSearch (_bulk, dated index names, retries with back-off)",
    )
    .options(OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(o: &[(&str, &str)]) -> Result<EsOptions, OptionError> {
        EsOptions::from_config(&PluginConfig::new(NAME, o.to_vec()))
    }

    #[test]
    fn index_names() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.index.render("2026-11-23T00:13:23+00:00"), "stoq-2026-11");
        let o = opts(&[("index_by_month", "false")]).unwrap();
        assert_eq!(o.index.render("2026-11-23T00:13:23+00:00"), "stoq");
        let o = opts(&[("es_index", "stoq-%Y.%m.%d")]).unwrap();
        assert_eq!(
            o.index.render("2026-11-23T00:13:23+00:00"),
            "stoq-2026.11.23"
        );
        for bad in ["Stoq", "a b", "_x", "x/%Y", "x-%q"] {
            assert_eq!(
                opts(&[("es_index", bad)]).unwrap_err().option,
                "es_index",
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_and_auth() {
        let o = opts(&[("es_host", "u:p@127.0.0.1:9200, https://h2:443/base")]).unwrap();
        assert_eq!(o.hosts.len(), 2);
        assert_eq!(o.hosts[0].as_str(), "http://127.0.0.1:9200/");
        assert_eq!(o.basic_auth, Some(("u".into(), "p".into())));
        let o = opts(&[(
            "es_options",
            r#"{"http_auth": ["a", "b"], "headers": {"x-t": "1"}}"#,
        )])
        .unwrap();
        assert_eq!(o.basic_auth, Some(("a".into(), "b".into())));
        assert_eq!(o.headers, vec![("x-t".to_string(), "1".to_string())]);
        assert_eq!(
            opts(&[("es_host", "ftp://x")]).unwrap_err().option,
            "es_host"
        );
        assert_eq!(
            opts(&[("es_options", "[1]")]).unwrap_err().option,
            "es_options"
        );
    }
}
