//! Routes: the method plus the path template, never the raw path, so that what is counted by
//! route stays bounded.

use graylane_core::spec::RouteTemplate;
use http::Method;

/// The route of requests beyond the limit.
pub(crate) const OTHER: &str = "other";

/// The route of `method` and `path`: the first of `templates` that matches, or a template made
/// from the path, each segment that looks like an id (see [`looks_like_id`]) made `{id}`.
pub(crate) fn route_of<'a>(
    templates: impl IntoIterator<Item = &'a RouteTemplate>,
    method: &Method,
    path: &str,
) -> String {
    if let Some(t) = templates
        .into_iter()
        .find(|t| t.matches(method.as_str(), path))
    {
        return t.to_string();
    }
    let mut route = format!("{method} ");
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    if segments.peek().is_none() {
        route.push('/');
    }
    for segment in segments {
        route.push('/');
        route.push_str(if looks_like_id(segment) {
            "{id}"
        } else {
            segment
        });
    }
    route
}

/// Digits only, or eight characters or more with a digit among them (`42`, `a1b2c3d4`, a
/// UUID); not `v2`, `orders`.
fn looks_like_id(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    digits == segment.len() || (segment.len() >= 8 && digits > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_become_parameters() {
        let none: [&RouteTemplate; 0] = [];
        for (path, route) in [
            ("/quote", "POST /quote"),
            ("/", "POST /"),
            ("/orders/42", "POST /orders/{id}"),
            (
                "/v2/orders/6f1c2a9e-2c4b-4d0e-9a51-1b2d3c4e5f60/",
                "POST /v2/orders/{id}",
            ),
            ("/users/alice/cart", "POST /users/alice/cart"),
        ] {
            assert_eq!(route_of(none, &Method::POST, path), route, "{path}");
        }
    }

    #[test]
    fn a_declared_template_wins() {
        let template = RouteTemplate::parse("GET /users/{name}/cart").unwrap();
        assert_eq!(
            route_of([&template], &Method::GET, "/users/alice/cart"),
            "GET /users/{name}/cart"
        );
        assert_eq!(
            route_of([&template], &Method::POST, "/users/alice/cart"),
            "POST /users/alice/cart"
        );
    }
}
