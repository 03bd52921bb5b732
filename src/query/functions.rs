//! Sundial's SQL functions, one file each (the constant catalog stubs share one):
//! PostgreSQL functions that drivers and psql call on their own, TimescaleDB's
//! `time_bucket`, and PostgreSQL's float output. [`scalar_functions`] is the registry;
//! a test checks it for duplicate names and for clashes with DataFusion's own functions.

/// The methods of a `ScalarUDFImpl` that wraps DataFusion's own function `self.inner`
/// (an `Arc<ScalarUDF>`) and keeps its name, signature and types.
macro_rules! delegate_to_inner {
    () => {
        fn name(&self) -> &str {
            self.inner.name()
        }

        fn aliases(&self) -> &[String] {
            self.inner.aliases()
        }

        fn signature(&self) -> &Signature {
            self.inner.signature()
        }

        fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
            self.inner.return_type(arg_types)
        }

        fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
            self.inner.return_field_from_args(args)
        }

        fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
            self.inner.coerce_types(arg_types)
        }
    };
}

/// A wrapper's identity is the function it wraps (one wrapper per inner function).
macro_rules! identity_of_inner {
    ($wrapper:ty) => {
        impl PartialEq for $wrapper {
            fn eq(&self, other: &Self) -> bool {
                self.inner == other.inner
            }
        }

        impl Eq for $wrapper {}

        impl std::hash::Hash for $wrapper {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.inner.hash(state);
            }
        }
    };
}

pub mod bounded;
pub mod current_setting;
pub mod date_trunc;
pub mod float_text;
pub mod json_build_object;
pub mod pg_size_pretty;
pub mod set_config;
pub mod stubs;
pub mod time_bucket;
pub mod to_regtype;
pub mod version;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

pub use pg_size_pretty::size_pretty;
pub use version::version_text;

/// DataFusion functions Sundial replaces on purpose (PostgreSQL's answer differs).
pub const REPLACED: &[&str] = &[
    "version",
    // UTC hours and days by arithmetic (see `date_trunc`).
    "date_trunc",
    "datetrunc",
    // Bounded versions of DataFusion's own (see `bounded`).
    "repeat",
    "lpad",
    "rpad",
    "replace",
    "regexp_replace",
    "array_repeat",
    "list_repeat",
];

/// Every scalar function Sundial adds.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    let mut all = vec![
        float_text::udf(false),
        float_text::udf(true),
        version::udf(),
        current_setting::udf(),
        json_build_object::udf(),
        time_bucket::udf(),
        date_trunc::udf(),
        to_regtype::udf(),
        pg_size_pretty::udf(),
        set_config::udf(),
    ];
    all.extend(stubs::udfs());
    all.extend(bounded::udfs());
    all
}

/// Registers the functions (replacing DataFusion's own `version()`) and the analyzer
/// rule that prints floats as PostgreSQL does.
pub fn register(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in bounded::udafs() {
        ctx.register_udaf(f);
    }
    ctx.add_analyzer_rule(Arc::new(float_text::FloatText));
    ctx.add_analyzer_rule(Arc::new(super::latest::LatestRows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_replace_only_on_purpose() {
        let builtin = SessionContext::new().state();
        let mut seen = std::collections::HashSet::new();
        for f in scalar_functions() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                assert!(seen.insert(name.to_string()), "{name} is registered twice");
                let clashes = builtin.scalar_functions().contains_key(name)
                    || builtin.aggregate_functions().contains_key(name)
                    || builtin.window_functions().contains_key(name);
                assert!(
                    !clashes || REPLACED.contains(&name),
                    "{name} would silently replace DataFusion's function of that name"
                );
            }
        }
        assert!(seen.contains("time_bucket") && seen.contains("version"));
    }
}
