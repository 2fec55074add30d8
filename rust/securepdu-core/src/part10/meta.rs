//! Reading and writing the file meta information group (PS3.10 §7.1).

use std::collections::BTreeMap;

use crate::codec::Reader;

use super::{Part10Error, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

/// Length of the preamble before "DICM".
pub const PREAMBLE_LEN: usize = 128;

/// Offset of the "DICM" prefix, and of the end of the fixed header.
pub const DICM_OFFSET: usize = PREAMBLE_LEN;

/// Cap on the header size (preamble included): real headers are a few hundred
/// bytes, and the cap bounds how much a caller must read before giving up.
pub const MAX_META_LEN: usize = 64 * 1024;

const META_START: usize = DICM_OFFSET + 4;

/// Element numbers in group 0002 (PS3.10 Table 7.1-1).
mod el {
    pub(super) const GROUP_LENGTH: u16 = 0x0000;
    pub(super) const VERSION: u16 = 0x0001;
    pub(super) const MEDIA_STORAGE_SOP_CLASS_UID: u16 = 0x0002;
    pub(super) const MEDIA_STORAGE_SOP_INSTANCE_UID: u16 = 0x0003;
    pub(super) const TRANSFER_SYNTAX_UID: u16 = 0x0010;
    pub(super) const IMPLEMENTATION_CLASS_UID: u16 = 0x0012;
    pub(super) const IMPLEMENTATION_VERSION_NAME: u16 = 0x0013;
    pub(super) const SOURCE_AE_TITLE: u16 = 0x0016;
}

/// The file meta information of a Part 10 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Media Storage SOP Class UID (0002,0002).
    pub media_storage_sop_class_uid: String,
    /// Media Storage SOP Instance UID (0002,0003).
    pub media_storage_sop_instance_uid: String,
    /// Transfer Syntax UID (0002,0010) of the data set that follows.
    pub transfer_syntax_uid: String,
    /// Implementation Class UID (0002,0012).
    pub implementation_class_uid: String,
    /// Implementation Version Name (0002,0013), SH.
    pub implementation_version_name: Option<String>,
    /// Source Application Entity Title (0002,0016), AE.
    pub source_application_entity_title: Option<String>,
    /// File Meta Information Version (0002,0001), OB, normally 00H 01H. Read leniently:
    /// empty if the file omits it.
    pub meta_information_version: Vec<u8>,
    /// Offset of the data set from the start of the file: the header's length. Set
    /// by [`read_file_meta`] and [`FileMeta::new`]; [`FileMeta::encode`] ignores it.
    pub dataset_offset: u64,
}

/// VRs with 2 reserved bytes and a 4-byte length in Explicit VR (PS3.5 §7.1.2).
fn is_long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OW"
            | b"OF"
            | b"SQ"
            | b"UT"
            | b"UN"
            | b"UC"
            | b"UR"
            | b"OD"
            | b"OL"
            | b"OV"
            | b"SV"
            | b"UV"
    )
}

/// Reads the header of a Part 10 file from its first bytes.
///
/// Parses group 0002 up to the first element of another group (or, if the buffer ends
/// within 2 bytes of where (0002,0000) says the group ends, to there, which allows a
/// file with an empty data set). When present, File Meta Information Group Length must match.
/// If `buf` ends inside the header the result is [`Part10Error::NeedMore`]; give up
/// once the file has no more bytes (a file whose data set is empty and whose header
/// lacks the group length also ends that way). Never reads past [`MAX_META_LEN`].
pub fn read_file_meta(buf: &[u8]) -> Result<FileMeta, Part10Error> {
    let mut r = Reader::new(buf);
    // Preamble (128 bytes, content unspecified), then "DICM".
    need(r.skip(PREAMBLE_LEN), META_START)?;
    if need(r.array::<4>(), META_START)? != *b"DICM" {
        return Err(Part10Error::NotPart10);
    }

    let mut elements: BTreeMap<u16, &[u8]> = BTreeMap::new();
    // (declared value, offset where the group then ends)
    let mut group_length: Option<(u32, usize)> = None;
    loop {
        let start = r.position();
        // At the declared end with no room to peek at the next group: trust the
        // group length (this is also how a file with an empty data set ends).
        if group_length.is_some_and(|(_, end)| end == start) && r.left() < 2 {
            break;
        }
        // Peek at the group: the meta information ends at the first other group.
        let mut peek = r.clone();
        if need(peek.u16_le(), start.saturating_add(2))? != 0x0002 {
            break;
        }
        // Explicit VR element: group, element (u16 LE each), VR (2 ASCII letters),
        // then either a u16 length, or 2 reserved bytes and a u32 length.
        let mut h = need(r.sub(8), start.saturating_add(8))?;
        let (_, element, vr) = match (h.u16_le(), h.u16_le(), h.array::<2>()) {
            (Some(g), Some(e), Some(vr)) => (g, e, vr),
            _ => {
                return Err(Part10Error::NeedMore {
                    at_least: start.saturating_add(8),
                })
            }
        };
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(Part10Error::InvalidVr { element, vr });
        }
        let len = if is_long_vr(vr) {
            // The last 2 header bytes were reserved; the u32 length follows.
            need(r.u32_le(), start.saturating_add(12))?
        } else {
            u32::from(need(h.u16_le(), start.saturating_add(8))?)
        };
        if len == u32::MAX {
            return Err(Part10Error::UndefinedLength { element });
        }
        let value_start = r.position();
        let end = value_start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        if end > MAX_META_LEN {
            return Err(Part10Error::MetaTooLong {
                limit: MAX_META_LEN,
            });
        }
        let value = need(r.take(end.saturating_sub(value_start)), end)?;

        if element == el::GROUP_LENGTH {
            // File Meta Information Group Length, UL: bytes after this element up to
            // the end of the group. Only meaningful as the first element.
            let mut v = Reader::new(value);
            let declared = match (v.u32_le(), v.is_empty(), start == META_START) {
                (Some(d), true, true) => d,
                (_, _, false) => {
                    return Err(Part10Error::InvalidValue {
                        element,
                        reason: "group length is not the first element",
                    })
                }
                _ => {
                    return Err(Part10Error::InvalidValue {
                        element,
                        reason: "UL value is not 4 bytes",
                    })
                }
            };
            let group_end = r
                .position()
                .saturating_add(usize::try_from(declared).unwrap_or(usize::MAX));
            group_length = Some((declared, group_end));
        } else if elements.insert(element, value).is_some() {
            return Err(Part10Error::DuplicateElement { element });
        }
    }

    let end = r.position();
    if let Some((declared, group_end)) = group_length {
        if group_end != end {
            let actual = end.saturating_sub(META_START + 12);
            return Err(Part10Error::GroupLengthMismatch { declared, actual });
        }
    }

    let uid = |element, name| -> Result<String, Part10Error> {
        let v = elements
            .get(&element)
            .ok_or(Part10Error::MissingElement { element, name })?;
        let s = std::str::from_utf8(v).map_err(|_| Part10Error::InvalidValue {
            element,
            reason: "UID is not ASCII",
        })?;
        let s = trim(s);
        if s.is_empty() {
            return Err(Part10Error::InvalidValue {
                element,
                reason: "UID is empty",
            });
        }
        Ok(s.to_owned())
    };
    let text = |element| {
        elements
            .get(&element)
            .map(|v| trim(&String::from_utf8_lossy(v)).to_owned())
    };

    Ok(FileMeta {
        media_storage_sop_class_uid: uid(
            el::MEDIA_STORAGE_SOP_CLASS_UID,
            "MediaStorageSOPClassUID",
        )?,
        media_storage_sop_instance_uid: uid(
            el::MEDIA_STORAGE_SOP_INSTANCE_UID,
            "MediaStorageSOPInstanceUID",
        )?,
        transfer_syntax_uid: uid(el::TRANSFER_SYNTAX_UID, "TransferSyntaxUID")?,
        implementation_class_uid: uid(el::IMPLEMENTATION_CLASS_UID, "ImplementationClassUID")?,
        implementation_version_name: text(el::IMPLEMENTATION_VERSION_NAME),
        source_application_entity_title: text(el::SOURCE_AE_TITLE),
        meta_information_version: elements
            .get(&el::VERSION)
            .map(|v| v.to_vec())
            .unwrap_or_default(),
        dataset_offset: end as u64,
    })
}

/// Maps "the buffer ended" to [`Part10Error::NeedMore`], or to
/// [`Part10Error::MetaTooLong`] once the header would pass the cap.
fn need<T>(v: Option<T>, at_least: usize) -> Result<T, Part10Error> {
    v.ok_or(if at_least > MAX_META_LEN {
        Part10Error::MetaTooLong {
            limit: MAX_META_LEN,
        }
    } else {
        Part10Error::NeedMore { at_least }
    })
}

/// Strips UID (NUL) and text (space) padding.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c == ' ')
}

impl FileMeta {
    /// File meta for a data set of the given SOP class and instance in the given
    /// transfer syntax, naming securepdu as the implementation.
    pub fn new(
        sop_class_uid: impl Into<String>,
        sop_instance_uid: impl Into<String>,
        transfer_syntax_uid: impl Into<String>,
    ) -> Self {
        let mut meta = Self {
            media_storage_sop_class_uid: sop_class_uid.into(),
            media_storage_sop_instance_uid: sop_instance_uid.into(),
            transfer_syntax_uid: transfer_syntax_uid.into(),
            implementation_class_uid: IMPLEMENTATION_CLASS_UID.to_owned(),
            implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_owned()),
            source_application_entity_title: None,
            meta_information_version: vec![0x00, 0x01],
            dataset_offset: 0,
        };
        meta.dataset_offset = meta.encode().len() as u64;
        meta
    }

    /// Encodes preamble (zeros), "DICM" and group 0002: group length first, then the
    /// elements in ascending order, UIDs NUL-padded and text space-padded to even
    /// length. An empty `meta_information_version` is written as 00H 01H.
    ///
    /// Values are written as given (not validated); one longer than its length field
    /// allows (65534 bytes for UI, SH, AE) is cut to fit, keeping the output well
    /// formed.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(256);
        let version: &[u8] = if self.meta_information_version.is_empty() {
            &[0x00, 0x01]
        } else {
            &self.meta_information_version
        };
        put(&mut body, el::VERSION, *b"OB", version, 0);
        put(
            &mut body,
            el::MEDIA_STORAGE_SOP_CLASS_UID,
            *b"UI",
            self.media_storage_sop_class_uid.as_bytes(),
            0,
        );
        put(
            &mut body,
            el::MEDIA_STORAGE_SOP_INSTANCE_UID,
            *b"UI",
            self.media_storage_sop_instance_uid.as_bytes(),
            0,
        );
        put(
            &mut body,
            el::TRANSFER_SYNTAX_UID,
            *b"UI",
            self.transfer_syntax_uid.as_bytes(),
            0,
        );
        put(
            &mut body,
            el::IMPLEMENTATION_CLASS_UID,
            *b"UI",
            self.implementation_class_uid.as_bytes(),
            0,
        );
        if let Some(name) = &self.implementation_version_name {
            put(
                &mut body,
                el::IMPLEMENTATION_VERSION_NAME,
                *b"SH",
                name.as_bytes(),
                b' ',
            );
        }
        if let Some(ae) = &self.source_application_entity_title {
            put(&mut body, el::SOURCE_AE_TITLE, *b"AE", ae.as_bytes(), b' ');
        }
        let mut out = Vec::with_capacity(META_START + 12 + body.len());
        out.resize(PREAMBLE_LEN, 0);
        out.extend_from_slice(b"DICM");
        let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        put(
            &mut out,
            el::GROUP_LENGTH,
            *b"UL",
            &body_len.to_le_bytes(),
            0,
        );
        out.extend_from_slice(&body);
        out
    }
}

/// Appends one Explicit VR Little Endian element of group 0002, padding the value
/// to even length with `pad`.
fn put(out: &mut Vec<u8>, element: u16, vr: [u8; 2], value: &[u8], pad: u8) {
    let long = is_long_vr(vr);
    let max = if long {
        u32::MAX as usize - 1
    } else {
        usize::from(u16::MAX) - 1
    };
    let value = value.get(..value.len().min(max)).unwrap_or(value);
    let padded_len = value.len() + value.len() % 2;
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&vr);
    if long {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&u32::try_from(padded_len).unwrap_or(u32::MAX).to_le_bytes());
    } else {
        out.extend_from_slice(&u16::try_from(padded_len).unwrap_or(u16::MAX).to_le_bytes());
    }
    out.extend_from_slice(value);
    if value.len() % 2 == 1 {
        out.push(pad);
    }
}
