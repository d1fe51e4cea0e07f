//! Where a proxied request goes: the request path is checked, then the
//! upstream URL is built under `<VAULT_ADDR>/v1/` and nowhere else.
//!
//! The managed token travels with every forwarded request, so a path that
//! could climb out of Vault's API (`/v1/../../admin` sent to a Vault behind a
//! path-prefixed gateway) must never be forwarded: HTTP clients and gateways
//! resolve dot segments, also percent-encoded ones (`%2e%2e`), and some treat
//! `%2f` and `\` as `/`. Such paths are refused with 400.

use url::Url;

/// How many rounds of percent-decoding a segment gets before it is judged
/// (a gateway may decode `%252e` to `%2e`, and Vault that to `.`).
const DECODE_ROUNDS: usize = 4;

/// Builds upstream URLs under one base ending in `/v1/`.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    base: Url,
}

impl Upstream {
    /// `base` is the client's base URL, `<VAULT_ADDR>/v1/`.
    pub(crate) fn new(base: &Url) -> Self {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Self { base }
    }

    /// The upstream URL for a request's `path_and_query` (`/v1/...`), or why
    /// it is refused.
    pub(crate) fn url(&self, path_and_query: &str) -> Result<Url, String> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        check_path(path)?;
        let rest = path.strip_prefix("/v1/").unwrap_or_default();
        let mut text = String::with_capacity(self.base.as_str().len() + path_and_query.len());
        text.push_str(self.base.as_str());
        text.push_str(rest);
        if let Some(q) = query {
            text.push('?');
            text.push_str(q);
        }
        let url = Url::parse(&text).map_err(|e| format!("the request path is not usable: {e}"))?;
        // Belt and braces: whatever the parser made of it, it stays under the base.
        if url.origin() != self.base.origin()
            || !url.path().starts_with(self.base.path())
            || url.fragment().is_some()
        {
            return Err(refusal(path));
        }
        Ok(url)
    }
}

/// Refuses a request path that is not `/v1/...` or that has a segment which,
/// after percent-decoding, is `.` or `..` (also `..;`), or holds `/` or `\`.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(format!(
            "vault-aws proxy forwards /v1/... paths only, not {}",
            shown(path)
        ));
    };
    // Fast path: nothing that could hide a dot segment or a separator.
    if !rest
        .bytes()
        .any(|b| matches!(b, b'.' | b'%' | b'\\' | b';'))
    {
        return Ok(());
    }
    for segment in rest.split('/') {
        if !segment_is_safe(segment) {
            return Err(refusal(path));
        }
    }
    Ok(())
}

fn segment_is_safe(segment: &str) -> bool {
    let mut bytes = segment.as_bytes().to_vec();
    for round in 0..=DECODE_ROUNDS {
        if bytes.contains(&b'/') || bytes.contains(&b'\\') {
            return false;
        }
        // `..;x` is `..` to servers that strip path parameters.
        let name = bytes.split(|&b| b == b';').next().unwrap_or_default();
        if name == b"." || name == b".." {
            return false;
        }
        match percent_decode(&bytes) {
            Some(decoded) if decoded != bytes => {
                if round == DECODE_ROUNDS {
                    // Still decoding after this many rounds: not a real path.
                    return false;
                }
                bytes = decoded;
            }
            _ => return true,
        }
    }
    false
}

/// One round of percent-decoding; `None` when nothing was encoded.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&b'%') {
        return None;
    }
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    Some(out)
}

fn refusal(path: &str) -> String {
    format!(
        "vault-aws proxy refuses the path {}: it has a '.' or '..' segment or an encoded \
         '/' or '\\' (also percent-encoded, e.g. %2e%2e or %2f); send the plain \
         /v1/<vault path>",
        shown(path)
    )
}

/// The path as shown in an error: bounded, printable.
fn shown(path: &str) -> String {
    let mut s: String = path.chars().take(200).collect();
    if s.len() < path.len() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base: &str) -> Upstream {
        Upstream::new(&Url::parse(base).unwrap())
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        for path in [
            "/v1/../../admin/x",
            "/v1/./sys/health",
            "/v1/secret/..",
            "/v1/secret/.",
            "/v1/%2e%2e/%2e%2e/admin/x",
            "/v1/%2E%2E/%2E%2E/admin/x",
            "/v1/.%2e/admin",
            "/v1/%2e./admin",
            "/v1/%2e/admin",
            "/v1/secret%2f..%2f..%2fadmin",
            "/v1/secret%2F..%2F..%2Fadmin",
            "/v1/..%5c..%5cadmin",
            "/v1/..%5C..%5Cadmin",
            "/v1/..\\..\\admin",
            "/v1/%252e%252e/admin",
            "/v1/%25252e%25252e/admin",
            "/v1/..;/admin",
            "/v1/%2e%2e;x/admin",
            "/v2/secret",
            "/admin",
        ] {
            assert!(check_path(path).is_err(), "{path} was accepted");
            assert!(
                upstream("http://gw/vault/v1/").url(path).is_err(),
                "{path} was accepted"
            );
        }
    }

    #[test]
    fn ordinary_paths_pass_unchanged_under_the_prefix() {
        let u = upstream("http://gw:8200/vault/v1/");
        for (path, want) in [
            (
                "/v1/secret/data/app",
                "http://gw:8200/vault/v1/secret/data/app",
            ),
            (
                "/v1/secret/data/app?version=2",
                "http://gw:8200/vault/v1/secret/data/app?version=2",
            ),
            (
                "/v1/secret/data/my.app..v2/x.json",
                "http://gw:8200/vault/v1/secret/data/my.app..v2/x.json",
            ),
            (
                "/v1/secret/data/a%20b",
                "http://gw:8200/vault/v1/secret/data/a%20b",
            ),
            (
                "/v1/secret/metadata/?list=true",
                "http://gw:8200/vault/v1/secret/metadata/?list=true",
            ),
            (
                "/v1/sys/health?x=../../y",
                "http://gw:8200/vault/v1/sys/health?x=../../y",
            ),
        ] {
            assert_eq!(u.url(path).unwrap().as_str(), want, "{path}");
        }
        assert_eq!(
            upstream("https://v:8200/v1/")
                .url("/v1/sys/health")
                .unwrap()
                .as_str(),
            "https://v:8200/v1/sys/health"
        );
    }

    #[test]
    fn the_refusal_names_the_path_and_the_expected_form() {
        let e = check_path("/v1/%2e%2e/admin").unwrap_err();
        assert!(e.contains("\"/v1/%2e%2e/admin\""), "{e}");
        assert!(e.contains("/v1/<vault path>"), "{e}");
    }
}
