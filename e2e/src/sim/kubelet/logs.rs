//! Container log files, one per container instance:
//! `<state-dir>/pods/<ns>_<pod>_<uid>/logs/<container>/<restart>.log`, in the CRI log format
//! (`<RFC 3339 time> <stdout|stderr> F <line>`), and how `containerLogs` renders them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::sync::Mutex;

/// The log directory of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir(pub PathBuf);

impl LogDir {
    /// The file of the instance after `restart` restarts.
    pub fn instance(&self, restart: i32) -> PathBuf {
        self.0.join(format!("{restart}.log"))
    }

    /// Instance numbers that have a log file, ascending.
    pub fn instances(&self) -> Vec<i32> {
        let mut found: Vec<i32> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        found.sort_unstable();
        found
    }
}

/// Opens (appending) the log file of an instance.
pub async fn open(path: &Path) -> anyhow::Result<Arc<Mutex<tokio::fs::File>>> {
    use anyhow::Context as _;
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .with_context(|| format!("failed to open {}", path.display()))?;
    Ok(Arc::new(Mutex::new(file)))
}

/// Copies `reader` (a process's stdout or stderr) into `file`, one CRI line per line.
pub async fn relay(
    reader: impl AsyncRead + Unpin,
    stream: &'static str,
    file: Arc<Mutex<tokio::fs::File>>,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let record = cri_line(Timestamp::now(), stream, &line);
                let mut file = file.lock().await;
                if file.write_all(&record).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One CRI record for `content` (a line with or without its newline).
pub fn cri_line(at: Timestamp, stream: &str, content: &[u8]) -> Vec<u8> {
    let (body, tag) = match content.strip_suffix(b"\n") {
        Some(body) => (body, "F"),
        None => (content, "P"),
    };
    let mut out = format!("{at} {stream} {tag} ").into_bytes();
    out.extend_from_slice(body);
    out.push(b'\n');
    out
}

/// A parsed CRI record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the line was written.
    pub at: Timestamp,
    /// The line as the process wrote it (newline included unless it was partial).
    pub content: String,
    /// Unused by renderers but kept for completeness: `stdout` or `stderr`.
    pub stream: &'a str,
}

/// Parses one line of a log file.
pub fn parse(line: &str) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, ' ');
    let at: Timestamp = parts.next()?.parse().ok()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let body = parts.next().unwrap_or("");
    let content = if tag == "P" {
        body.to_string()
    } else {
        format!("{body}\n")
    };
    Some(Record {
        at,
        content,
        stream,
    })
}

/// `containerLogs` query options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming while the container runs.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// The previous instance instead of the current one.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<usize>,
}

impl LogOptions {
    /// Parses the query string of a `containerLogs` request.
    pub fn from_query(query: &str) -> Self {
        let mut o = LogOptions::default();
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let yes = value == "true" || value == "1";
            match key {
                "follow" => o.follow = yes,
                "timestamps" => o.timestamps = yes,
                "previous" => o.previous = yes,
                "tailLines" => o.tail_lines = value.parse().ok(),
                "sinceSeconds" => o.since_seconds = value.parse().ok(),
                "limitBytes" => o.limit_bytes = value.parse().ok(),
                _ => {}
            }
        }
        o
    }
}

/// Renders complete log text for the options (tail, since, timestamps), without following.
pub fn render(text: &str, options: &LogOptions, now: Timestamp) -> String {
    let since = options
        .since_seconds
        .map(|s| now.as_second().saturating_sub(s));
    let records: Vec<Record<'_>> = text
        .lines()
        .filter_map(parse)
        .filter(|r| since.is_none_or(|s| r.at.as_second() >= s))
        .collect();
    let skip = options
        .tail_lines
        .map_or(0, |n| records.len().saturating_sub(n));
    records
        .iter()
        .skip(skip)
        .map(|r| render_record(r, options.timestamps))
        .collect()
}

/// One record as `kubectl logs` shows it.
pub fn render_record(record: &Record<'_>, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}", record.at, record.content)
    } else {
        record.content.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_roundtrip_and_rendering() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let mut text = String::new();
        text.push_str(&String::from_utf8(cri_line(t0, "stdout", b"one\n")).unwrap());
        text.push_str(&String::from_utf8(cri_line(t1, "stderr", b"two words\n")).unwrap());
        text.push_str(&String::from_utf8(cri_line(t1, "stdout", b"partial")).unwrap());
        let all = LogOptions::default();
        assert_eq!(render(&text, &all, t1), "one\ntwo words\npartial");
        let tail = LogOptions {
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(render(&text, &tail, t1), "partial");
        let since = LogOptions {
            since_seconds: Some(10),
            ..Default::default()
        };
        assert_eq!(render(&text, &since, t1), "two words\npartial");
        let stamped = LogOptions {
            timestamps: true,
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(
            render(&text, &stamped, t1),
            format!("{t1} two words\n{t1} partial")
        );
    }

    #[test]
    fn parses_query() {
        let o = LogOptions::from_query("follow=true&tailLines=5&timestamps=1&previous=false");
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                tail_lines: Some(5),
                timestamps: true,
                ..Default::default()
            }
        );
    }
}
