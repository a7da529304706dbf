//! Keeps Secret values out of the text Archivist copies into statuses, Events and its log: the
//! last lines of a failed Job's pod and the stderr of a failed hook.
//!
//! A [`Redactor`] is built from the values of every Secret a run references (the credentials
//! Secret of each SQL source, the policy's `master.secrets`; for a restore also the backup's
//! Secret copy and the SQL target's credentials) and replaces each occurrence of any value by
//! `***`. The matching is pure and exact:
//! - every non-empty value counts, however short (a 2-character password is still a password);
//! - values that overlap or contain one another are all covered: the union of every match is
//!   replaced, so `abcd` and `cdef` in `abcdef` leave nothing of either;
//! - a value with a trailing newline also matches without it, and a multi-line value (a key
//!   file) also matches line by line and with its whitespace collapsed, the way log tails are
//!   printed;
//! - base64 forms are not matched (Archivist never prints them).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use std::collections::BTreeSet;

/// A [`Redactor`] read only when first needed: the Secrets are read when there is text to
/// redact (a failed Job's message, a hook's stderr), not on every reconcile of a run.
pub struct LazyRedactor {
    client: Client,
    namespace: String,
    names: Vec<String>,
    loaded: tokio::sync::OnceCell<Redactor>,
}

impl LazyRedactor {
    /// A redactor of the Secrets `names` of `namespace`, read at the first [`Self::get`].
    pub fn new<'a>(client: &Client, namespace: &str, names: impl IntoIterator<Item = &'a str>) -> Self {
        Self { client: client.clone(), namespace: namespace.to_string(), names: names.into_iter().map(String::from).collect(), loaded: tokio::sync::OnceCell::new() }
    }

    /// The redactor; the Secrets are read at the first call (`Redactor::load`).
    pub async fn get(&self) -> Result<&Redactor, kube::Error> {
        self.loaded.get_or_try_init(|| Redactor::load(&self.client, &self.namespace, self.names.iter().map(String::as_str))).await
    }

    /// The redactor, or when the Secrets cannot be read one that withholds every text whole
    /// ([`Redactor::withholding_all`]): for hooks, which must run (a thaw above all) whether
    /// or not their stderr can be quoted.
    pub async fn or_withhold(&self) -> std::borrow::Cow<'_, Redactor> {
        match self.get().await {
            Ok(r) => std::borrow::Cow::Borrowed(r),
            Err(error) => {
                tracing::warn!(%error, namespace = %self.namespace, "cannot read the Secrets to redact; hook output is withheld");
                std::borrow::Cow::Owned(Redactor::withholding_all())
            }
        }
    }
}

/// What a redacted value is replaced by.
pub const MARKER: &str = "***";

/// Lines of a multi-line value shorter than this are not matched on their own (a lone `}` or
/// `-----END KEY-----` line is no secret); whole values are matched at any length.
const MIN_LINE_LEN: usize = 8;

/// Replaces every occurrence of a set of secret values by [`MARKER`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// The strings to replace, longest first (then in byte order, for determinism).
    needles: Vec<String>,
    /// Every text is replaced whole: the Secrets could not be read.
    withhold_all: bool,
}

impl Redactor {
    /// A redactor for these values. Empty values are ignored.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for value in values {
            let value = value.as_ref();
            let trimmed = value.trim_end_matches(['\n', '\r']);
            for needle in [value, trimmed] {
                set.insert(needle.to_string());
            }
            if value.trim().contains(['\n', '\r']) {
                set.insert(value.split_whitespace().collect::<Vec<_>>().join(" "));
                set.extend(value.lines().map(str::trim).filter(|l| l.len() >= MIN_LINE_LEN).map(String::from));
            }
        }
        set.remove("");
        let mut needles: Vec<String> = set.into_iter().collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Self { needles, withhold_all: false }
    }

    /// A redactor that replaces every non-empty text whole by [`MARKER`]: used when the values
    /// to redact cannot be read, since quoting nothing is better than quoting a secret.
    pub fn withholding_all() -> Self {
        Self { needles: Vec::new(), withhold_all: true }
    }

    /// A redactor for every value (UTF-8 text; binary values cannot appear in a text log as
    /// they are) of every given Secret.
    pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let values = secrets.into_iter().flat_map(|secret| {
            let data = secret.data.iter().flatten().filter_map(|(_, v)| String::from_utf8(v.0.clone()).ok());
            let string_data = secret.string_data.iter().flatten().map(|(_, v)| v.clone());
            data.chain(string_data).collect::<Vec<_>>()
        });
        Self::new(values)
    }

    /// Reads the Secrets `names` of `namespace` (each once; a missing one is skipped: a run
    /// that needs it fails on its own) and builds the redactor of their values.
    pub async fn load<'a>(client: &Client, namespace: &str, names: impl IntoIterator<Item = &'a str>) -> Result<Self, kube::Error> {
        let api = Api::<Secret>::namespaced(client.clone(), namespace);
        let mut secrets = Vec::new();
        for name in names.into_iter().collect::<BTreeSet<_>>() {
            if let Some(secret) = api.get_opt(name).await? {
                secrets.push(secret);
            }
        }
        Ok(Self::from_secrets(&secrets))
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty() && !self.withhold_all
    }

    /// `text` with every occurrence of every value replaced by [`MARKER`]; a run of covered
    /// text (overlapping or adjacent matches) becomes one marker.
    pub fn redact(&self, text: &str) -> String {
        if self.withhold_all && !text.is_empty() {
            return MARKER.to_string();
        }
        if self.needles.is_empty() || text.is_empty() {
            return text.to_string();
        }
        let mut covered = vec![false; text.len()];
        for needle in &self.needles {
            let mut from = 0;
            while let Some(at) = text[from..].find(needle.as_str()) {
                let start = from + at;
                covered[start..start + needle.len()].iter_mut().for_each(|c| *c = true);
                // Also matches that start inside this one: the next character boundary.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut in_secret = false;
        for (i, c) in text.char_indices() {
            if covered[i] {
                if !in_secret {
                    out.push_str(MARKER);
                    in_secret = true;
                }
            } else {
                in_secret = false;
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    /// When the Secrets cannot be read, nothing of any text is quoted, but an empty text stays
    /// empty (so "no output" still reads as such).
    #[test]
    fn withholding_all_quotes_nothing() {
        let r = Redactor::withholding_all();
        assert!(!r.is_empty());
        for (text, want) in [("FATAL: wrong password pw-1f2e", MARKER), ("x", MARKER), ("", "")] {
            assert_eq!(r.redact(text), want, "{text:?}");
        }
    }

    #[test]
    fn redacts_every_value() {
        let cases: Vec<(&str, Vec<&str>, &str, &str)> = vec![
            ("nothing to redact", vec![], "password authentication failed", "password authentication failed"),
            ("a password", vec!["pw-1f2e"], "FATAL: wrong password pw-1f2e for archivist", "FATAL: wrong password *** for archivist"),
            ("every occurrence", vec!["s3cret"], "s3cret,s3cret;xs3cret", "***,***;x***"),
            ("short values too", vec!["pg"], "user pg: no", "user ***: no"),
            ("one character", vec!["7"], "a7b", "a***b"),
            ("empty values are ignored", vec!["", "pw"], "a pw b", "a *** b"),
            ("only empty values", vec![""], "text", "text"),
            ("longest first: no tail of the longer value is left", vec!["secret", "secret-long"], "x secret-long y secret", "x *** y ***"),
            ("overlapping values leave nothing of either", vec!["abcd", "cdef"], "xabcdefx", "x***x"),
            ("one value inside another", vec!["bc", "abcd"], "abcd bc", "*** ***"),
            ("adjacent values become one marker", vec!["ab", "cd"], "abcd", "***"),
            ("overlapping occurrences of one value", vec!["aa"], "aaa", "***"),
            ("a trailing newline in the value", vec!["pw-9\n"], "said pw-9 then", "said *** then"),
            ("non-ASCII text around", vec!["gizli"], "şifre=gizli ✓", "şifre=*** ✓"),
            ("non-ASCII value", vec!["пароль"], "x пароль y", "x *** y"),
            ("regex characters are literal", vec!["a.c"], "abc a.c", "abc ***"),
        ];
        for (name, values, text, want) in cases {
            assert_eq!(Redactor::new(values).redact(text), want, "{name}");
        }
    }

    #[test]
    fn multi_line_values_match_as_log_tails_print_them() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----\n";
        let r = Redactor::new([key]);
        assert_eq!(r.redact(&format!("loaded {key}done")), "loaded ***done");
        let collapsed = key.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(r.redact(&format!("tail: {collapsed} end")), "tail: *** end");
        assert_eq!(r.redact("only part: BKcwggSjAgEAAoIBAQC7 here"), "only part: *** here");
        assert_eq!(r.redact("a short line: -----END is kept"), "a short line: -----END is kept");
    }

    #[test]
    fn built_from_secret_data_and_string_data() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("username".to_string(), ByteString(b"archivist".to_vec())),
                ("password".to_string(), ByteString(b"pw-42".to_vec())),
                ("binary".to_string(), ByteString(vec![0xff, 0xfe])),
                ("empty".to_string(), ByteString(Vec::new())),
            ])),
            string_data: Some(BTreeMap::from([("token".to_string(), "tok-7".to_string())])),
            ..Default::default()
        };
        let r = Redactor::from_secrets([&secret]);
        assert_eq!(r.redact("archivist pw-42 tok-7 ok"), "*** *** *** ok");
        assert!(Redactor::from_secrets([&Secret::default()]).is_empty());
    }
}
