//! A prost message for unary gRPC tests: one string, field 1, so that tests need neither protoc
//! nor a `.proto` file. Any one-string message of another test speaks the same bytes.

/// One string, field 1.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Text {
    /// The text.
    #[prost(string, tag = "1")]
    pub text: String,
}

impl Text {
    /// A message holding `text`.
    pub fn new(text: impl Into<String>) -> Text {
        Text { text: text.into() }
    }
}
