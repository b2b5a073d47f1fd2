//! The command-line values of the library's option enums (feature `cli`): each enum's own
//! names, aliases and help lines ([`Solver`], [`Loss`], [`Init`], [`Orthogonality`],
//! [`SparseOrder`], [`Storage`], [`HeaderMode`]) as `clap::ValueEnum`, so that `nmf`, `nmf-bench` and the
//! examples accept exactly the library's list and no front end writes it again.
//! [`BackendChoice`](crate::BackendChoice) takes `gpu:N`, which no fixed list holds: front ends
//! parse it with its `FromStr`.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::io::{HeaderMode, Storage};
use crate::options::{Init, Loss, Orthogonality, Solver, SparseOrder};

/// `ValueEnum` for an enum with `name`, `aliases` (or none) and `help`, over `$values`.
macro_rules! value_enum {
    ($t:ty, $values:expr, aliases) => {
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                $values
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(
                    PossibleValue::new(self.name())
                        .aliases(self.aliases().iter().copied())
                        .help(self.help()),
                )
            }
        }
    };
    ($t:ty, $values:expr) => {
        impl ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                $values
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.name()).help(self.help()))
            }
        }
    };
}

value_enum!(Solver, &Solver::ALL, aliases);
value_enum!(Orthogonality, &Orthogonality::ALL, aliases);
value_enum!(Init, Init::NAMED);
value_enum!(Storage, &Storage::ALL);
value_enum!(SparseOrder, &SparseOrder::ALL);
value_enum!(HeaderMode, &HeaderMode::ALL);

/// The named losses; a β without a name is `--beta B` (it has no fixed value to list).
impl ValueEnum for Loss {
    fn value_variants<'a>() -> &'a [Self] {
        &Loss::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self.canonical() {
            Loss::Beta(_) => None,
            named => Some(
                PossibleValue::new(named.name())
                    .aliases(named.aliases().iter().copied())
                    .help(named.help()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap parses exactly the library's names and aliases, to the value `from_name` gives.
    fn parses_as_library<T: ValueEnum + PartialEq + std::fmt::Debug>(
        names: impl IntoIterator<Item = (&'static str, T)>,
    ) {
        for (name, value) in names {
            assert_eq!(T::from_str(name, false).ok(), Some(value), "{name}");
        }
    }

    #[test]
    fn every_name_and_alias_parses_to_the_library_value() {
        parses_as_library(Solver::ALL.into_iter().flat_map(|s| {
            std::iter::once(s.name())
                .chain(s.aliases().iter().copied())
                .map(move |n| (n, s))
        }));
        parses_as_library(Loss::ALL.into_iter().flat_map(|l| {
            std::iter::once(l.name())
                .chain(l.aliases().iter().copied())
                .map(move |n| (n, l))
        }));
        parses_as_library(Orthogonality::ALL.into_iter().flat_map(|o| {
            std::iter::once(o.name())
                .chain(o.aliases().iter().copied())
                .map(move |n| (n, o))
        }));
        parses_as_library(Init::NAMED.iter().map(|i| (i.name(), i.clone())));
        parses_as_library(Storage::ALL.map(|s| (s.name(), s)));
        parses_as_library(HeaderMode::ALL.map(|h| (h.name(), h)));
        assert!(Solver::from_str("sgd", false).is_err());
        assert!(Loss::from_str("beta", false).is_err());
        assert!(Init::from_str("custom", false).is_err());
    }

    #[test]
    fn the_lists_agree_with_from_name() {
        for s in Solver::value_variants() {
            let pv = s.to_possible_value().expect("every solver has a name");
            for name in pv.get_name_and_aliases() {
                assert_eq!(Solver::from_name(name), Some(*s));
            }
        }
        for l in Loss::value_variants() {
            let pv = l.to_possible_value().expect("every listed loss has a name");
            for name in pv.get_name_and_aliases() {
                assert_eq!(Loss::from_name(name), Some(*l));
            }
        }
    }
}
