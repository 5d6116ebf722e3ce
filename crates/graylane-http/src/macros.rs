//! Code every middleware of the crate would otherwise write out again.

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose wrapped service is its `inner`
/// field and its first type parameter: `inner_accessors!(Mirror<S, M>)`.
macro_rules! inner_accessors {
    ($service:ident < $inner:ident $(, $param:ident)* >) => {
        impl<$inner $(, $param)*> $service<$inner $(, $param)*> {
            /// Gets a reference to the inner service.
            pub const fn get_ref(&self) -> &$inner {
                &self.inner
            }

            /// Gets a mutable reference to the inner service.
            pub const fn get_mut(&mut self) -> &mut $inner {
                &mut self.inner
            }

            /// Consumes the middleware, returning the inner service.
            pub fn into_inner(self) -> $inner {
                self.inner
            }
        }
    };
}

pub(crate) use inner_accessors;
