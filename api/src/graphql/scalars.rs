use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// An unsigned 64-bit integer as a decimal string: stream sequences outgrow GraphQL's 32-bit
/// `Int` and JavaScript's safe integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U64(pub u64);

/// An unsigned 64-bit integer as a decimal string (e.g. `"18446744073709551615"`): stream
/// sequences outgrow GraphQL's 32-bit `Int` and JavaScript's safe integers. As input, a
/// non-negative integer literal is accepted too.
#[Scalar(name = "U64")]
impl ScalarType for U64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(U64)
                .map_err(|_| InputValueError::custom("U64 must be a decimal string")),
            Value::Number(n) => n
                .as_u64()
                .map(U64)
                .ok_or_else(|| InputValueError::custom("U64 must be non-negative")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
