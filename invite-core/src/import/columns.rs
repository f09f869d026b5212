//! Which column holds what: an explicit [`ColumnMapping`], else the header's names (English
//! and Russian), else the values themselves.

use serde::{Deserialize, Serialize};

use super::error::{ImportError, Result};
use super::table::RawRow;
use crate::domain::{Platform, Username};

/// What a column is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    /// `@username`, `username` or a profile link.
    Username,
    /// Numeric platform user id.
    UserId,
    /// Phone number.
    Phone,
    /// Any of the three, told apart value by value (`TargetIdentifier::parse`).
    Identifier,
    /// First name.
    FirstName,
    /// Last name.
    LastName,
    /// Full name.
    FullName,
    /// E-mail address.
    Email,
}

impl ColumnRole {
    /// Every role, identifier roles first, in the order a row's identifiers are preferred.
    pub const ALL: [ColumnRole; 8] = [
        ColumnRole::Username,
        ColumnRole::UserId,
        ColumnRole::Phone,
        ColumnRole::Identifier,
        ColumnRole::FirstName,
        ColumnRole::LastName,
        ColumnRole::FullName,
        ColumnRole::Email,
    ];

    /// The roles that identify a person.
    pub const IDENTIFIERS: [ColumnRole; 4] = [
        ColumnRole::Username,
        ColumnRole::UserId,
        ColumnRole::Phone,
        ColumnRole::Identifier,
    ];

    /// Whether the role identifies a person.
    pub const fn is_identifier(self) -> bool {
        matches!(
            self,
            Self::Username | Self::UserId | Self::Phone | Self::Identifier
        )
    }

    /// Snake-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::UserId => "user_id",
            Self::Phone => "phone",
            Self::Identifier => "identifier",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::FullName => "full_name",
            Self::Email => "email",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A column, by its header name (matched like detected headers: only letters and digits
/// count, in any case) or by its position from 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// Position, from 0.
    Index(usize),
    /// Header name.
    Name(String),
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Index(i) => write!(f, "column {}", i + 1),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// Columns chosen by the caller. When given, detection is off: only the mapped columns are
/// read, and at least one identifier column must be mapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnMapping {
    /// Usernames.
    pub username: Option<ColumnRef>,
    /// Numeric user ids.
    pub user_id: Option<ColumnRef>,
    /// Phone numbers.
    pub phone: Option<ColumnRef>,
    /// Mixed identifiers, told apart value by value.
    pub identifier: Option<ColumnRef>,
    /// First names.
    pub first_name: Option<ColumnRef>,
    /// Last names.
    pub last_name: Option<ColumnRef>,
    /// Full names.
    pub full_name: Option<ColumnRef>,
    /// E-mail addresses.
    pub email: Option<ColumnRef>,
}

impl ColumnMapping {
    /// The column mapped to `role`.
    pub fn get(&self, role: ColumnRole) -> Option<&ColumnRef> {
        match role {
            ColumnRole::Username => self.username.as_ref(),
            ColumnRole::UserId => self.user_id.as_ref(),
            ColumnRole::Phone => self.phone.as_ref(),
            ColumnRole::Identifier => self.identifier.as_ref(),
            ColumnRole::FirstName => self.first_name.as_ref(),
            ColumnRole::LastName => self.last_name.as_ref(),
            ColumnRole::FullName => self.full_name.as_ref(),
            ColumnRole::Email => self.email.as_ref(),
        }
    }

    fn uses_names(&self) -> bool {
        ColumnRole::ALL
            .iter()
            .any(|r| matches!(self.get(*r), Some(ColumnRef::Name(_))))
    }
}

/// How the identifier columns were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// From the caller's [`ColumnMapping`].
    Mapping,
    /// From the header's names.
    Header,
    /// From the values (no header, or a header with unknown names).
    Values,
}

/// One column in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnUse {
    /// What it is read as.
    pub role: ColumnRole,
    /// Position, from 0.
    pub index: usize,
    /// Its header name, or `column N` / a spreadsheet letter when there is no header.
    pub label: String,
}

/// Header names, normalised, by role. Earlier names of a role win over later ones when a file
/// has several (`user_id` beats `id`).
const SYNONYMS: &[(ColumnRole, &[&str])] = &[
    (
        ColumnRole::Username,
        &[
            "username",
            "login",
            "nickname",
            "nick",
            "screenname",
            "tgusername",
            "telegramusername",
            "юзернейм",
            "логин",
            "никнейм",
            "ник",
            "имяпользователя",
        ],
    ),
    (
        ColumnRole::UserId,
        &[
            "userid",
            "telegramid",
            "tgid",
            "tguserid",
            "telegramuserid",
            "idпользователя",
            "айди",
            "id",
            "ид",
        ],
    ),
    (
        ColumnRole::Phone,
        &[
            "phone",
            "phonenumber",
            "phoneno",
            "mobile",
            "tel",
            "telephone",
            "телефон",
            "номертелефона",
            "мобильный",
            "тел",
            "номер",
        ],
    ),
    (
        ColumnRole::Identifier,
        &[
            "identifier",
            "contact",
            "user",
            "telegram",
            "tg",
            "target",
            "account",
            "profile",
            "link",
            "контакт",
            "пользователь",
            "аккаунт",
            "профиль",
            "ссылка",
        ],
    ),
    (
        ColumnRole::FirstName,
        &["firstname", "givenname", "first", "имя"],
    ),
    (
        ColumnRole::LastName,
        &["lastname", "surname", "familyname", "last", "фамилия"],
    ),
    (
        ColumnRole::FullName,
        &[
            "fullname",
            "displayname",
            "name",
            "фио",
            "полноеимя",
            "имяифамилия",
        ],
    ),
    (
        ColumnRole::Email,
        &[
            "email",
            "emailaddress",
            "mail",
            "почта",
            "электроннаяпочта",
            "емейл",
        ],
    ),
];

/// Lower-cases and keeps only letters and digits (so spaces, underscores, hyphens, dots,
/// colons, a BOM and the like do not matter): `First Name`, `first_name:` and `FIRSTNAME` are
/// one name.
pub(crate) fn normalize_header(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect()
}

/// The role a header name stands for, with its rank among that role's names.
pub(crate) fn header_role(name: &str) -> Option<(ColumnRole, usize)> {
    let n = normalize_header(name);
    if n.is_empty() {
        return None;
    }
    SYNONYMS
        .iter()
        .find_map(|(role, names)| names.iter().position(|s| *s == n).map(|rank| (*role, rank)))
}

/// What one value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueClass {
    /// `@name` or a profile link.
    AtName,
    /// Plain digits of a user id's length.
    Digits,
    /// `+…`, a formatted number, or digits too long for a user id.
    PhoneLike,
    /// A word that is a valid username without `@`.
    PlainName,
    /// Anything else.
    Other,
}

fn is_link(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    ["t.me/", "telegram.me/", "telegram.dog/", "instagram.com/"]
        .iter()
        .any(|h| lower.contains(h))
        || lower.starts_with("tg://")
}

pub(crate) fn classify_value(value: &str, platform: Platform) -> ValueClass {
    let s = value.trim();
    if s.starts_with('@') || is_link(s) {
        return ValueClass::AtName;
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match platform {
            Platform::Whatsapp if s.len() >= 7 => ValueClass::PhoneLike,
            Platform::Whatsapp => ValueClass::Other,
            Platform::Instagram if s.len() >= 5 => ValueClass::Digits,
            Platform::Telegram | Platform::Sandbox if (5..=10).contains(&s.len()) => {
                ValueClass::Digits
            }
            Platform::Telegram | Platform::Sandbox if (11..=15).contains(&s.len()) => {
                ValueClass::PhoneLike
            }
            _ => ValueClass::Other,
        };
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let phone_chars = s
        .strip_prefix('+')
        .unwrap_or(s)
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.' | '\u{a0}'));
    if phone_chars && (7..=15).contains(&digits) {
        return ValueClass::PhoneLike;
    }
    if Username::parse(s, platform).is_ok() {
        return ValueClass::PlainName;
    }
    ValueClass::Other
}

/// What a column looks like, from its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Role(ColumnRole),
    PlainNames,
}

impl ColumnKind {
    fn fits(self, class: ValueClass) -> bool {
        match self {
            Self::Role(ColumnRole::Username) => class == ValueClass::AtName,
            Self::Role(ColumnRole::UserId) => class == ValueClass::Digits,
            Self::Role(ColumnRole::Phone) => class == ValueClass::PhoneLike,
            Self::Role(_) => class != ValueClass::Other,
            Self::PlainNames => class == ValueClass::PlainName,
        }
    }
}

/// The kind of a column from its non-empty values, with the share of values that fit.
fn classify_column<'a>(
    values: impl Iterator<Item = &'a str>,
    platform: Platform,
) -> Option<(ColumnKind, f64)> {
    let (mut n, mut at, mut digits, mut phone, mut plain) = (0u32, 0u32, 0u32, 0u32, 0u32);
    for v in values.filter(|v| !v.trim().is_empty()) {
        n += 1;
        match classify_value(v, platform) {
            ValueClass::AtName => at += 1,
            ValueClass::Digits => digits += 1,
            ValueClass::PhoneLike => phone += 1,
            ValueClass::PlainName => plain += 1,
            ValueClass::Other => {}
        }
    }
    if n == 0 {
        return None;
    }
    let share = |k: u32| f64::from(k) / f64::from(n);
    let ids = at + digits + phone;
    let kind = if share(at) >= 0.8 {
        (ColumnKind::Role(ColumnRole::Username), share(at))
    } else if share(phone) >= 0.8 {
        (ColumnKind::Role(ColumnRole::Phone), share(phone))
    } else if share(digits) >= 0.8 {
        (ColumnKind::Role(ColumnRole::UserId), share(digits))
    } else if share(ids) >= 0.5 && share(ids + plain) >= 0.8 {
        (ColumnKind::Role(ColumnRole::Identifier), share(ids + plain))
    } else if share(plain) >= 0.8 {
        (ColumnKind::PlainNames, share(plain))
    } else {
        return None;
    };
    Some(kind)
}

/// Identifier columns found from values, among the columns `free` allows.
fn detect_from_values(
    data: &[RawRow],
    columns: usize,
    free: impl Fn(usize) -> bool,
    platform: Platform,
) -> Vec<(usize, ColumnKind)> {
    let mut best: Vec<(ColumnKind, usize, f64)> = Vec::new();
    for col in (0..columns).filter(|c| free(*c)) {
        let values = data
            .iter()
            .filter(|r| r.malformed.is_none())
            .map(|r| r.cells.get(col).map_or("", String::as_str));
        let Some((kind, share)) = classify_column(values, platform) else {
            continue;
        };
        match best.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(entry) if share > entry.2 => *entry = (kind, col, share),
            Some(_) => {}
            None => best.push((kind, col, share)),
        }
    }
    let plain_columns = (0..columns)
        .filter(|c| free(*c))
        .filter(|c| {
            let values = data
                .iter()
                .map(|r| r.cells.get(*c).map_or("", String::as_str));
            matches!(
                classify_column(values, platform),
                Some((ColumnKind::PlainNames, _))
            )
        })
        .count();
    let has_role = best
        .iter()
        .any(|(k, _, _)| matches!(k, ColumnKind::Role(_)));
    best.into_iter()
        .filter(|(k, _, _)| match k {
            ColumnKind::Role(_) => true,
            // A lone column of bare words is read as usernames only when nothing better is
            // there and it is the only such column.
            ColumnKind::PlainNames => !has_role && plain_columns == 1,
        })
        .map(|(k, col, _)| (col, k))
        .collect()
}

/// Where the header comes from.
#[derive(Debug, Clone)]
pub(crate) enum HeaderHint {
    /// Known column names, not a row of the data (JSON object keys).
    Given(Vec<String>),
    /// The data has no header (a JSON array of strings).
    Never,
    /// The first row may be a header (CSV, XLSX).
    FirstRow,
}

/// How columns without a header are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelStyle {
    /// `column 1`, `column 2`, …
    Numbered,
    /// `A`, `B`, … `AA`, as in a spreadsheet.
    Letters,
}

pub(crate) fn column_letter(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The resolved use of each column.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The first buffered row is a header, not data.
    pub header_row: bool,
    /// A label for every column.
    pub labels: Vec<String>,
    /// Column of each role, by [`ColumnRole::index`].
    pub roles: [Option<usize>; 8],
    /// How the identifier columns were found.
    pub detection: Detection,
}

impl Layout {
    pub(crate) fn column(&self, role: ColumnRole) -> Option<usize> {
        self.roles[role.index()]
    }

    pub(crate) fn label(&self, col: usize) -> &str {
        self.labels.get(col).map_or("", String::as_str)
    }

    pub(crate) fn uses(&self) -> Vec<ColumnUse> {
        ColumnRole::ALL
            .iter()
            .filter_map(|role| {
                self.column(*role).map(|index| ColumnUse {
                    role: *role,
                    index,
                    label: self.label(index).to_owned(),
                })
            })
            .collect()
    }

    fn has_identifier(&self) -> bool {
        ColumnRole::IDENTIFIERS
            .iter()
            .any(|r| self.column(*r).is_some())
    }
}

/// Settings of [`resolve`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResolveOptions<'a> {
    pub platform: Platform,
    pub has_header: Option<bool>,
    pub mapping: Option<&'a ColumnMapping>,
    pub style: LabelStyle,
}

/// Decides the header and the columns from the first non-empty rows of a file (`rows[0]` is
/// the first row, the rest a sample of what follows).
pub(crate) fn resolve(
    rows: &[RawRow],
    hint: &HeaderHint,
    opts: ResolveOptions<'_>,
) -> Result<Layout> {
    let platform = opts.platform;
    let (header_row, names): (bool, Option<Vec<String>>) = match hint {
        HeaderHint::Given(keys) => (false, Some(keys.clone())),
        HeaderHint::Never => (false, None),
        HeaderHint::FirstRow => {
            let first = rows.first();
            let is_header = match (opts.has_header, first) {
                (_, None) => false,
                (Some(b), _) => b,
                (None, Some(_)) if opts.mapping.is_some_and(ColumnMapping::uses_names) => true,
                (None, Some(first)) => first_row_is_header(first, &rows[1..], platform),
            };
            (is_header, is_header.then(|| rows[0].cells.clone()))
        }
    };
    let data = if header_row { &rows[1..] } else { rows };
    let columns = data
        .iter()
        .map(|r| r.cells.len())
        .chain(names.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let labels = (0..columns)
        .map(|i| {
            let name = names
                .as_ref()
                .and_then(|n| n.get(i))
                .map(|s| s.trim_start_matches('\u{feff}').trim())
                .filter(|s| !s.is_empty());
            match (name, opts.style) {
                (Some(n), _) => n.to_owned(),
                (None, LabelStyle::Numbered) => format!("column {}", i + 1),
                (None, LabelStyle::Letters) => column_letter(i),
            }
        })
        .collect::<Vec<_>>();
    let mut layout = Layout {
        header_row,
        labels,
        roles: [None; 8],
        detection: Detection::Header,
    };

    if let Some(mapping) = opts.mapping {
        layout.detection = Detection::Mapping;
        for role in ColumnRole::ALL {
            let Some(col_ref) = mapping.get(role) else {
                continue;
            };
            let col = match col_ref {
                ColumnRef::Index(i) if *i < columns => Some(*i),
                ColumnRef::Index(_) => None,
                ColumnRef::Name(name) => {
                    let want = normalize_header(name);
                    names
                        .as_ref()
                        .and_then(|n| n.iter().position(|h| normalize_header(h) == want))
                }
            };
            let col = col.ok_or_else(|| ImportError::ColumnNotFound {
                column: col_ref.to_string(),
            })?;
            layout.roles[role.index()] = Some(col);
        }
        if !layout.has_identifier() {
            return Err(ImportError::MappingWithoutIdentifier);
        }
        return Ok(layout);
    }

    if let Some(names) = &names {
        let mut best: [Option<(usize, usize)>; 8] = [None; 8];
        for (col, name) in names.iter().enumerate() {
            if let Some((role, rank)) = header_role(name) {
                let slot = &mut best[role.index()];
                if slot.is_none_or(|(r, _)| rank < r) {
                    *slot = Some((rank, col));
                }
            }
        }
        for role in ColumnRole::ALL {
            layout.roles[role.index()] = best[role.index()].map(|(_, col)| col);
        }
    }
    if !layout.has_identifier() {
        layout.detection = Detection::Values;
        let taken: Vec<usize> = layout.roles.iter().flatten().copied().collect();
        for (col, kind) in detect_from_values(data, columns, |c| !taken.contains(&c), platform) {
            let role = match kind {
                ColumnKind::Role(role) => role,
                ColumnKind::PlainNames => ColumnRole::Username,
            };
            layout.roles[role.index()] = Some(col);
        }
    }
    if !layout.has_identifier() {
        return Err(ImportError::NoIdentifierColumn {
            columns: layout.labels.clone(),
        });
    }
    Ok(layout)
}

/// A first row with a known column name is a header. Otherwise it is a header when the rows
/// after it show identifier columns and none of its own cells fits them.
fn first_row_is_header(first: &RawRow, rest: &[RawRow], platform: Platform) -> bool {
    if first.cells.iter().any(|c| header_role(c).is_some()) {
        return true;
    }
    let columns = rest.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    let found = detect_from_values(rest, columns, |_| true, platform);
    if found.is_empty() {
        return false;
    }
    found.iter().all(|(col, kind)| {
        let cell = first.cells.get(*col).map_or("", String::as_str);
        !kind.fits(classify_value(cell, platform))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64, cells: &[&str]) -> RawRow {
        RawRow::new(n, cells.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn header_names_in_both_languages() {
        let cases = [
            ("Username", ColumnRole::Username),
            ("\u{feff}Логин", ColumnRole::Username),
            ("ник", ColumnRole::Username),
            ("Никнейм", ColumnRole::Username),
            ("User ID", ColumnRole::UserId),
            ("telegram_id", ColumnRole::UserId),
            ("TG-ID", ColumnRole::UserId),
            ("id", ColumnRole::UserId),
            ("Phone Number", ColumnRole::Phone),
            ("Номер телефона", ColumnRole::Phone),
            ("номер", ColumnRole::Phone),
            ("first_name", ColumnRole::FirstName),
            ("Имя", ColumnRole::FirstName),
            ("LastName", ColumnRole::LastName),
            ("Фамилия", ColumnRole::LastName),
            ("ФИО", ColumnRole::FullName),
            ("full name", ColumnRole::FullName),
            ("Name", ColumnRole::FullName),
            ("E-mail", ColumnRole::Email),
            ("Почта", ColumnRole::Email),
            ("Контакт", ColumnRole::Identifier),
            ("Телефон:", ColumnRole::Phone),
            ("«Имя пользователя»", ColumnRole::Username),
            ("Ёмейл", ColumnRole::Email),
        ];
        for (name, role) in cases {
            assert_eq!(header_role(name).map(|(r, _)| r), Some(role), "{name}");
        }
        assert_eq!(header_role("comment"), None);
        assert_eq!(header_role(""), None);
    }

    #[test]
    fn value_classes() {
        let tg = Platform::Telegram;
        assert_eq!(classify_value("@durov", tg), ValueClass::AtName);
        assert_eq!(classify_value("https://t.me/durov", tg), ValueClass::AtName);
        assert_eq!(classify_value("123456789", tg), ValueClass::Digits);
        assert_eq!(classify_value("79161234567", tg), ValueClass::PhoneLike);
        assert_eq!(
            classify_value("+7 916 123-45-67", tg),
            ValueClass::PhoneLike
        );
        assert_eq!(
            classify_value("8 (916) 123-45-67", tg),
            ValueClass::PhoneLike
        );
        assert_eq!(classify_value("durov_team", tg), ValueClass::PlainName);
        assert_eq!(classify_value("Иван", tg), ValueClass::Other);
        assert_eq!(classify_value("42", tg), ValueClass::Other);
        assert_eq!(
            classify_value("79161234567", Platform::Instagram),
            ValueClass::Digits
        );
    }

    #[test]
    fn letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }

    fn opts() -> ResolveOptions<'static> {
        ResolveOptions {
            platform: Platform::Telegram,
            has_header: None,
            mapping: None,
            style: LabelStyle::Numbered,
        }
    }

    #[test]
    fn headerless_columns_from_values() {
        let rows = [
            row(1, &["Иван", "@ivan_petrov", "+79161234567"]),
            row(2, &["Анна", "@anna_smirnova", "+79161234568"]),
        ];
        let layout = resolve(&rows, &HeaderHint::FirstRow, opts()).unwrap();
        assert!(!layout.header_row);
        assert_eq!(layout.detection, Detection::Values);
        assert_eq!(layout.column(ColumnRole::Username), Some(1));
        assert_eq!(layout.column(ColumnRole::Phone), Some(2));
        assert_eq!(layout.label(1), "column 2");
    }

    #[test]
    fn unknown_header_over_identifier_values() {
        let rows = [
            row(1, &["Кто", "Комментарий"]),
            row(2, &["@ivan_petrov", "друг"]),
            row(3, &["@anna_smirnova", ""]),
        ];
        let layout = resolve(&rows, &HeaderHint::FirstRow, opts()).unwrap();
        assert!(layout.header_row);
        assert_eq!(layout.column(ColumnRole::Username), Some(0));
        assert_eq!(layout.label(0), "Кто");
    }

    #[test]
    fn ranked_synonyms_prefer_specific_names() {
        let rows = [
            row(1, &["id", "telegram_id", "ник"]),
            row(2, &["1", "12345", "@abcde"]),
        ];
        let layout = resolve(&rows, &HeaderHint::FirstRow, opts()).unwrap();
        assert_eq!(layout.column(ColumnRole::UserId), Some(1));
        assert_eq!(layout.column(ColumnRole::Username), Some(2));
    }

    #[test]
    fn mapping_overrides_detection() {
        let rows = [row(1, &["a", "b"]), row(2, &["x", "@someone"])];
        let mapping = ColumnMapping {
            identifier: Some(ColumnRef::Name(" B ".into())),
            first_name: Some(ColumnRef::Index(0)),
            ..ColumnMapping::default()
        };
        let o = ResolveOptions {
            mapping: Some(&mapping),
            ..opts()
        };
        let layout = resolve(&rows, &HeaderHint::FirstRow, o).unwrap();
        assert!(layout.header_row);
        assert_eq!(layout.detection, Detection::Mapping);
        assert_eq!(layout.column(ColumnRole::Identifier), Some(1));
        assert_eq!(layout.column(ColumnRole::FirstName), Some(0));

        let bad = ColumnMapping {
            phone: Some(ColumnRef::Name("телефон".into())),
            ..ColumnMapping::default()
        };
        let o = ResolveOptions {
            mapping: Some(&bad),
            ..opts()
        };
        assert_eq!(
            resolve(&rows, &HeaderHint::FirstRow, o).unwrap_err(),
            ImportError::ColumnNotFound {
                column: "телефон".into()
            }
        );
        let no_id = ColumnMapping {
            email: Some(ColumnRef::Index(0)),
            ..ColumnMapping::default()
        };
        let o = ResolveOptions {
            mapping: Some(&no_id),
            ..opts()
        };
        assert_eq!(
            resolve(&rows, &HeaderHint::FirstRow, o).unwrap_err(),
            ImportError::MappingWithoutIdentifier
        );
    }

    #[test]
    fn mapping_deserialises_names_and_indexes() {
        let m: ColumnMapping = serde_json::from_str(r#"{"username": "Ник", "phone": 2}"#).unwrap();
        assert_eq!(m.username, Some(ColumnRef::Name("Ник".into())));
        assert_eq!(m.phone, Some(ColumnRef::Index(2)));
        assert!(serde_json::from_str::<ColumnMapping>(r#"{"nick": 1}"#).is_err());
    }

    #[test]
    fn nothing_to_identify_people_by() {
        let rows = [row(1, &["Иван", "друг"]), row(2, &["Анна", "коллега"])];
        assert!(matches!(
            resolve(&rows, &HeaderHint::FirstRow, opts()),
            Err(ImportError::NoIdentifierColumn { .. })
        ));
    }
}
