//! The values of OCI JSON fields, deserialised so that serde's messages
//! ("invalid type: string \"0\", expected ...") name the field at fault and
//! what to write there, never a Rust type (`u64`, `struct OciProfile`).
//! Each field has a marker type whose [`Field::EXPECTING`] is that text.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// A JSON field: what serde says it expected there.
pub(crate) trait Field {
    /// Completes "expected ...", e.g. "`index` as a number from 0 to 5".
    const EXPECTING: &'static str;
}

/// Declares marker types for fields.
macro_rules! fields {
    ($($marker:ident => $expecting:literal,)*) => {
        $(
            pub(crate) struct $marker;
            impl Field for $marker {
                const EXPECTING: &'static str = $expecting;
            }
        )*
    };
}

fields! {
    DefaultAction => "`defaultAction` as a string such as \"SCMP_ACT_ERRNO\"",
    DefaultErrnoRet => "`defaultErrnoRet` as a number from 0 to 4095",
    Architectures => "`architectures` as a list of strings such as [\"SCMP_ARCH_X86_64\"]",
    Syscalls => "`syscalls` as a list of objects {\"names\": [...], \"action\": \"SCMP_ACT_...\"}",
    Names => "`names` as a list of syscall names such as [\"read\", \"write\"]",
    Name => "`name` as a syscall name such as \"read\"",
    SyscallAction => "`action` as a string such as \"SCMP_ACT_ALLOW\"",
    ErrnoRet => "`errnoRet` as a number from 0 to 4095",
    Args => "`args` as a list of objects {\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_...\"}",
    Index => "`index` as a number from 0 to 5",
    Value => "`value` as a number from 0 to 18446744073709551615",
    ValueTwo => "`valueTwo` as a number from 0 to 18446744073709551615",
    Op => "`op` as a string such as \"SCMP_CMP_EQ\"",
    Caps => "`caps` as a list of strings such as [\"CAP_SYS_ADMIN\"]",
    Arches => "`arches` as a list of strings such as [\"amd64\"]",
    MinKernel => "`minKernel` as a string such as \"5.8\"",
}

/// A non-negative JSON integer.
pub(crate) struct Number<F>(pub u64, pub PhantomData<F>);

/// A JSON string.
pub(crate) struct Text<F>(pub String, pub PhantomData<F>);

/// A JSON list of strings.
pub(crate) struct TextList<F>(pub Vec<String>, pub PhantomData<F>);

/// A JSON list of objects of type `T`.
pub(crate) struct ObjectList<T, F>(pub Vec<T>, pub PhantomData<F>);

/// A JSON object only: serde's derived structs also take a JSON array
/// (fields by position), which turns `[...]` given for a profile into
/// "invalid length 0" or a complaint about its first element.
pub(crate) struct Object<T>(pub T);

/// The text of "expected ..." for an object of type `T`.
pub(crate) trait Described {
    /// E.g. "a seccomp profile object {\"defaultAction\": ...}".
    const WHAT: &'static str;
}

struct FieldVisitor<T, F>(PhantomData<(T, F)>);

impl<T, F> FieldVisitor<T, F> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, F: Field> Visitor<'de> for FieldVisitor<u64, F> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(F::EXPECTING)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
    }
}

impl<'de, F: Field> Visitor<'de> for FieldVisitor<String, F> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(F::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }
}

impl<'de, F: Field> Visitor<'de> for FieldVisitor<Vec<String>, F> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(F::EXPECTING)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut items = Vec::new();
        while let Some(Text(item, _)) = seq.next_element::<Text<F>>()? {
            items.push(item);
        }
        Ok(items)
    }
}

struct ListVisitor<T, F>(PhantomData<(T, F)>);

impl<'de, T: Deserialize<'de> + Described, F: Field> Visitor<'de> for ListVisitor<T, F> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(F::EXPECTING)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(Object(item)) = seq.next_element::<Object<T>>()? {
            items.push(item);
        }
        Ok(items)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Described> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

impl<'de, F: Field> Deserialize<'de> for Number<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_u64(FieldVisitor::<u64, F>::new())?;
        Ok(Self(value, PhantomData))
    }
}

impl<'de, F: Field> Deserialize<'de> for Text<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_string(FieldVisitor::<String, F>::new())?;
        Ok(Self(value, PhantomData))
    }
}

impl<'de, F: Field> Deserialize<'de> for TextList<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_seq(FieldVisitor::<Vec<String>, F>::new())?;
        Ok(Self(value, PhantomData))
    }
}

impl<'de, T: Deserialize<'de> + Described, F: Field> Deserialize<'de> for ObjectList<T, F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_seq(ListVisitor::<T, F>(PhantomData))?;
        Ok(Self(value, PhantomData))
    }
}

impl<'de, T: Deserialize<'de> + Described> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor::<T>(PhantomData))
            .map(Object)
    }
}
