//! Splitting text into lowercase word tokens.

/// The shortest token kept, in characters (`char`s, after lowercasing).
pub const MIN_TOKEN_CHARS: usize = 2;

/// Split `text` into lowercase word tokens.
///
/// 1. A token is a maximal run of *word characters*: letters and digits of any script
///    (`char::is_alphanumeric`), the underscore `_` (so `snake_case` is one token), combining
///    marks that are not letters themselves (accents of
///    decomposed text such as `e` + U+0301, Indic viramas and nuktas, Hebrew points; the
///    non-alphabetic characters of the Unicode general category `M`), and the zero-width
///    (non-)joiners U+200C and U+200D. Everything else (spaces, punctuation, apostrophes,
///    hyphens, symbols, emoji) separates tokens, so `"don't"` gives `don` and `t`, and
///    `"state-of-the-art"` gives four tokens.
/// 2. Each token is lowercased with the Unicode case mapping (`str::to_lowercase`).
/// 3. Tokens shorter than [`MIN_TOKEN_CHARS`] characters, and tokens made only of numeric
///    characters (`2024`, `٣`, `Ⅻ`), are dropped; mixed tokens such as `3d` or `mp3` are kept.
///
/// This follows scikit-learn's `CountVectorizer` token pattern `(?u)\b\w\w+\b` with
/// lowercasing, plus the removal of numbers. One difference remains: combining marks join
/// words here, while Python's `\w` (letters, digits and `_`) does not match them, so
/// scikit-learn splits decomposed `cafe` + U+0301 into `cafe` alone and Hindi `हिन्दी` into
/// pieces where this keeps each word whole. Scripts written without spaces between words
/// (Chinese, Japanese, Thai) are not segmented: a run of such characters is one token.
///
/// ```
/// use nmf_gpu::text::tokenize;
///
/// assert_eq!(
///     tokenize("Café au lait, 2 croissants & 3D-printing in 2024!"),
///     ["café", "au", "lait", "croissants", "3d", "printing", "in"]
/// );
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| tokens.push(token));
    tokens
}

/// Call `f` with every token of `text`, in order (the rules of [`tokenize`]).
pub(crate) fn for_each_token(text: &str, mut f: impl FnMut(String)) {
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            emit(&text[s..i], &mut f);
        }
    }
    if let Some(s) = start {
        emit(&text[s..], &mut f);
    }
}

fn emit(word: &str, f: &mut impl FnMut(String)) {
    if word.chars().all(char::is_numeric) {
        return;
    }
    let lower = word.to_lowercase();
    if lower.chars().nth(MIN_TOKEN_CHARS - 1).is_some() {
        f(lower);
    }
}

/// Whether `c` belongs to a word (see [`tokenize`]).
fn is_word_char(c: char) -> bool {
    if c.is_alphanumeric() || c == '_' {
        return true;
    }
    let cp = u32::from(c);
    if cp < 0x0300 {
        return false;
    }
    NONALPHABETIC_MARKS
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Inclusive ranges of the code points of general category `M` (marks) that are not
/// alphanumeric for `char::is_alphanumeric` (marks that are, such as most Indic vowel signs,
/// are word characters anyway), plus U+200C and U+200D. Generated from the Unicode 14
/// character database; sorted and disjoint.
#[rustfmt::skip]
const NONALPHABETIC_MARKS: [(u32, u32); 169] = [
    (0x0300, 0x0344), (0x0346, 0x0362), (0x0483, 0x0489), (0x0591, 0x05AF), (0x0658, 0x0658),
    (0x06DF, 0x06E0), (0x06EA, 0x06EC), (0x0740, 0x074A), (0x07EB, 0x07F3), (0x07FD, 0x07FD),
    (0x0818, 0x0819), (0x082D, 0x082D), (0x0859, 0x085B), (0x0898, 0x089F), (0x08CA, 0x08D3),
    (0x08E0, 0x08E1), (0x08EA, 0x08EF), (0x093C, 0x093C), (0x094D, 0x094D), (0x0951, 0x0954),
    (0x09BC, 0x09BC), (0x09CD, 0x09CD), (0x09FE, 0x09FE), (0x0A3C, 0x0A3C), (0x0A4D, 0x0A4D),
    (0x0ABC, 0x0ABC), (0x0ACD, 0x0ACD), (0x0AFD, 0x0AFF), (0x0B3C, 0x0B3C), (0x0B4D, 0x0B4D),
    (0x0B55, 0x0B55), (0x0BCD, 0x0BCD), (0x0C3C, 0x0C3C), (0x0C4D, 0x0C4D), (0x0CBC, 0x0CBC),
    (0x0CCD, 0x0CCD), (0x0D3B, 0x0D3C), (0x0D4D, 0x0D4D), (0x0DCA, 0x0DCA), (0x0E47, 0x0E4C),
    (0x0E4E, 0x0E4E), (0x0EBA, 0x0EBA), (0x0EC8, 0x0ECC), (0x0F18, 0x0F19), (0x0F35, 0x0F35),
    (0x0F37, 0x0F37), (0x0F39, 0x0F39), (0x0F3E, 0x0F3F), (0x0F84, 0x0F84), (0x0F86, 0x0F87),
    (0x0FC6, 0x0FC6), (0x1037, 0x1037), (0x1039, 0x103A), (0x135D, 0x135F), (0x1714, 0x1715),
    (0x1734, 0x1734), (0x17B4, 0x17B5), (0x17C9, 0x17D3), (0x17DD, 0x17DD), (0x180B, 0x180D),
    (0x180F, 0x180F), (0x1939, 0x193B), (0x1A60, 0x1A60), (0x1A75, 0x1A7C), (0x1A7F, 0x1A7F),
    (0x1AB0, 0x1ABE), (0x1AC1, 0x1ACB), (0x1B34, 0x1B34), (0x1B44, 0x1B44), (0x1B6B, 0x1B73),
    (0x1BAA, 0x1BAB), (0x1BE6, 0x1BE6), (0x1BF2, 0x1BF3), (0x1C37, 0x1C37), (0x1CD0, 0x1CD2),
    (0x1CD4, 0x1CE8), (0x1CED, 0x1CED), (0x1CF4, 0x1CF4), (0x1CF7, 0x1CF9), (0x1DC0, 0x1DD2),
    (0x1DF5, 0x1DFF), (0x200C, 0x200D), (0x20D0, 0x20F0), (0x2CEF, 0x2CF1), (0x2D7F, 0x2D7F),
    (0x302A, 0x302F), (0x3099, 0x309A), (0xA66F, 0xA672), (0xA67C, 0xA67D), (0xA6F0, 0xA6F1),
    (0xA806, 0xA806), (0xA82C, 0xA82C), (0xA8C4, 0xA8C4), (0xA8E0, 0xA8F1), (0xA92B, 0xA92D),
    (0xA953, 0xA953), (0xA9B3, 0xA9B3), (0xA9C0, 0xA9C0), (0xAABF, 0xAABF), (0xAAC1, 0xAAC1),
    (0xAAF6, 0xAAF6), (0xABEC, 0xABED), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F), (0x101FD, 0x101FD),
    (0x102E0, 0x102E0), (0x10A38, 0x10A3A), (0x10A3F, 0x10A3F), (0x10AE5, 0x10AE6), (0x10F46, 0x10F50),
    (0x10F82, 0x10F85), (0x11046, 0x11046), (0x11070, 0x11070), (0x1107F, 0x1107F), (0x110B9, 0x110BA),
    (0x11133, 0x11134), (0x11173, 0x11173), (0x111C0, 0x111C0), (0x111C9, 0x111CC), (0x11235, 0x11236),
    (0x112E9, 0x112EA), (0x1133B, 0x1133C), (0x1134D, 0x1134D), (0x11366, 0x1136C), (0x11370, 0x11374),
    (0x11442, 0x11442), (0x11446, 0x11446), (0x1145E, 0x1145E), (0x114C2, 0x114C3), (0x115BF, 0x115C0),
    (0x1163F, 0x1163F), (0x116B6, 0x116B7), (0x1172B, 0x1172B), (0x11839, 0x1183A), (0x1193D, 0x1193E),
    (0x11943, 0x11943), (0x119E0, 0x119E0), (0x11A33, 0x11A34), (0x11A47, 0x11A47), (0x11A98, 0x11A99),
    (0x11C3F, 0x11C3F), (0x11D42, 0x11D42), (0x11D44, 0x11D45), (0x11D97, 0x11D97), (0x16AF0, 0x16AF4),
    (0x16B30, 0x16B36), (0x16FE4, 0x16FE4), (0x1BC9D, 0x1BC9D), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46),
    (0x1D165, 0x1D169), (0x1D16D, 0x1D172), (0x1D17B, 0x1D182), (0x1D185, 0x1D18B), (0x1D1AA, 0x1D1AD),
    (0x1D242, 0x1D244), (0x1DA00, 0x1DA36), (0x1DA3B, 0x1DA6C), (0x1DA75, 0x1DA75), (0x1DA84, 0x1DA84),
    (0x1DA9B, 0x1DA9F), (0x1DAA1, 0x1DAAF), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF),
    (0x1E8D0, 0x1E8D6), (0x1E944, 0x1E946), (0x1E948, 0x1E94A), (0xE0100, 0xE01EF),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_table_is_sorted_and_disjoint() {
        for pair in NONALPHABETIC_MARKS.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
    }

    #[test]
    fn decomposed_accents_and_viramas_stay_in_the_word() {
        assert_eq!(tokenize("cafe\u{301} noir"), ["cafe\u{301}", "noir"]);
        assert_eq!(tokenize("हिन्दी भाषा"), ["हिन्दी", "भाषा"]);
    }

    #[test]
    fn underscore_is_a_word_character() {
        assert_eq!(
            tokenize("snake_case and __init__"),
            ["snake_case", "and", "__init__"]
        );
        assert_eq!(tokenize("a_ _b x_1"), ["a_", "_b", "x_1"]);
    }
}
