//! An endpoint a request is pointed at: the router's per-lane targets and the mirror's target.

use http::uri::{Authority, Parts, PathAndQuery, Scheme, Uri};

/// Scheme and authority of an endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    scheme: Scheme,
    authority: Authority,
}

impl Endpoint {
    /// The endpoint of `uri`, which must be a scheme and an authority without a path.
    pub(crate) fn new(uri: Uri) -> Result<Endpoint, String> {
        let parts = uri.into_parts();
        if parts
            .path_and_query
            .as_ref()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        {
            return Err("an endpoint is a scheme and authority, without a path".into());
        }
        match (parts.scheme, parts.authority) {
            (Some(scheme), Some(authority)) => Ok(Endpoint { scheme, authority }),
            _ => Err("an endpoint needs a scheme and an authority (http://host:port)".into()),
        }
    }

    /// `uri` pointed at this endpoint: its path and query kept, `/` when it has none.
    pub(crate) fn apply(&self, uri: &Uri) -> Uri {
        let mut parts = Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(s: &str) -> Result<Endpoint, String> {
        Endpoint::new(s.parse().unwrap())
    }

    #[test]
    fn keeps_path_and_query_and_replaces_the_rest() {
        let e = endpoint("https://v2:8443/").unwrap();
        let moved = e.apply(&"http://v1:80/orders/7?full=1".parse().unwrap());
        assert_eq!(moved, "https://v2:8443/orders/7?full=1");
        assert_eq!(
            e.apply(&"http://v1:80".parse().unwrap()),
            "https://v2:8443/"
        );
    }

    #[test]
    fn needs_scheme_and_authority_and_no_path() {
        assert!(endpoint("http://v2:80").is_ok());
        assert!(
            endpoint("http://v2:80/x")
                .unwrap_err()
                .contains("without a path")
        );
        assert!(endpoint("v2:80").unwrap_err().contains("scheme"));
    }
}
