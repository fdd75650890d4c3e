//! `serde` support (feature `serde`): an [`Algorithm`] is its wire name, a [`Tick`] is
//! `{"step", "value", "round", "broken"}` (derived on the type).

use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::Algorithm;
use crate::algorithm::write_names;

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Algorithm, D::Error> {
        deserializer.deserialize_str(AlgorithmVisitor)
    }
}

struct AlgorithmVisitor;

impl Visitor<'_> for AlgorithmVisitor {
    type Value = Algorithm;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an algorithm name: ")?;
        write_names(f, " or ")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Algorithm, E> {
        Algorithm::parse(name).map_err(|_| E::custom(UnknownName(name)))
    }
}

/// `unknown algorithm "name": expected "mix32-v1", "lcg32" or "interval-v0"`.
struct UnknownName<'a>(&'a str);

impl fmt::Display for UnknownName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown algorithm {:?}: expected ", self.0)?;
        write_names(f, " or ")
    }
}
