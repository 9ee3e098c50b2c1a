//! Confluent's wire format, which its serializers put before a record's
//! key or value: the magic byte 0, the schema id (4 bytes, big-endian),
//! then for Protobuf the indexes of the message within its file (a count
//! and the indexes, zigzag varints; a lone 0 is the first message), then
//! the data. The broker reads only this prefix, to check schema ids.

/// The magic byte every framed key or value starts with.
pub const MAGIC_BYTE: u8 = 0;
/// How many message indexes are read at most: a message nested this deep
/// is not one a schema would name.
pub const MESSAGE_INDEXES_MAX: usize = 64;

/// The schema id of a framed key or value and the bytes after it; `None`
/// when the bytes do not start with the magic byte and an id.
pub fn schema_id(data: &[u8]) -> Option<(i32, &[u8])> {
    match data {
        [MAGIC_BYTE, a, b, c, d, rest @ ..] => Some((i32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}

/// The Protobuf message indexes at the start of `rest` (what follows the
/// id): `[0]` for the file's first message, else the path through nested
/// messages. `None` when they cannot be read.
pub fn message_indexes(rest: &[u8]) -> Option<Vec<i32>> {
    let mut at = 0;
    let count = zigzag_varint(rest, &mut at)?;
    if count == 0 {
        return Some(vec![0]);
    }
    let count = usize::try_from(count).ok().filter(|c| *c <= MESSAGE_INDEXES_MAX)?;
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        indexes.push(zigzag_varint(rest, &mut at).filter(|i| *i >= 0)?);
    }
    Some(indexes)
}

/// A zigzag-encoded 32-bit varint at `*at`, advancing it.
fn zigzag_varint(b: &[u8], at: &mut usize) -> Option<i32> {
    let mut raw: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        raw |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i32 ^ -((raw & 1) as i32));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_read_and_anything_else_refused() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 7, 42, 43]), Some((263, &[42u8, 43][..])));
        assert_eq!(schema_id(&[0, 0, 0, 0, 1]), Some((1, &[][..])));
        assert_eq!(schema_id(&[0, 0, 0, 1]), None, "four bytes hold no id");
        assert_eq!(schema_id(&[1, 0, 0, 0, 1]), None, "another magic byte");
        assert_eq!(schema_id(b"{\"json\": true}"), None);
        assert_eq!(schema_id(&[]), None);
    }

    #[test]
    fn message_indexes_as_confluent_writes_them() {
        assert_eq!(message_indexes(&[0, 9, 9]), Some(vec![0]), "a lone 0: the first message");
        // Count 2 (zigzag 4), then 1 (zigzag 2) and 0: the first message nested in the second.
        assert_eq!(message_indexes(&[4, 2, 0]), Some(vec![1, 0]));
        // Count 1, index 70 (zigzag 140: two varint bytes).
        assert_eq!(message_indexes(&[2, 0x8c, 0x01]), Some(vec![70]));
        assert_eq!(message_indexes(&[4, 2]), None, "cut short");
        assert_eq!(message_indexes(&[]), None);
        assert_eq!(message_indexes(&[1]), None, "a negative count");
        assert_eq!(message_indexes(&[2, 1]), None, "a negative index");
        assert_eq!(message_indexes(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), None, "a varint too long");
        // Count 65 is zigzag 130, the varint 0x82 0x01.
        let many = [vec![0x82, 0x01], vec![0; MESSAGE_INDEXES_MAX + 1]].concat();
        assert_eq!(message_indexes(&many), None, "more indexes than any schema nests");
    }
}
