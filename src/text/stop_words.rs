//! Stop words: frequent words dropped before counting.

use std::collections::BTreeSet;

/// The built-in English stop words: 295 lowercase words, sorted (byte order), no duplicates.
///
/// Source: the list of the Glasgow Information Retrieval Group as shipped by scikit-learn
/// (`sklearn.feature_extraction.text.ENGLISH_STOP_WORDS`, 318 words), without 23 content
/// words that it contains and that often name a topic: `amount`, `bill`, `bottom`, `con`,
/// `cry`, `describe`, `detail`, `empty`, `fill`, `fire`, `front`, `full`, `interest`, `mill`,
/// `move`, `part`, `serious`, `side`, `sincere`, `system`, `thick`, `thin`, `top`. One-letter
/// words (`a`, `i`) are listed for completeness although [`tokenize`](super::tokenize) already
/// drops them.
#[rustfmt::skip]
pub const ENGLISH_STOP_WORDS: [&str; 295] = [
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "all", "almost",
    "alone", "along", "already", "also", "although", "always", "am", "among", "amongst", "amoungst",
    "an", "and", "another", "any", "anyhow", "anyone", "anything", "anyway", "anywhere", "are",
    "around", "as", "at", "back", "be", "became", "because", "become", "becomes", "becoming",
    "been", "before", "beforehand", "behind", "being", "below", "beside", "besides", "between",
    "beyond", "both", "but", "by", "call", "can", "cannot", "cant", "co", "could", "couldnt", "de",
    "do", "done", "down", "due", "during", "each", "eg", "eight", "either", "eleven", "else",
    "elsewhere", "enough", "etc", "even", "ever", "every", "everyone", "everything", "everywhere",
    "except", "few", "fifteen", "fifty", "find", "first", "five", "for", "former", "formerly",
    "forty", "found", "four", "from", "further", "get", "give", "go", "had", "has", "hasnt", "have",
    "he", "hence", "her", "here", "hereafter", "hereby", "herein", "hereupon", "hers", "herself",
    "him", "himself", "his", "how", "however", "hundred", "i", "ie", "if", "in", "inc", "indeed",
    "into", "is", "it", "its", "itself", "keep", "last", "latter", "latterly", "least", "less",
    "ltd", "made", "many", "may", "me", "meanwhile", "might", "mine", "more", "moreover", "most",
    "mostly", "much", "must", "my", "myself", "name", "namely", "neither", "never", "nevertheless",
    "next", "nine", "no", "nobody", "none", "noone", "nor", "not", "nothing", "now", "nowhere",
    "of", "off", "often", "on", "once", "one", "only", "onto", "or", "other", "others", "otherwise",
    "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps", "please", "put", "rather",
    "re", "same", "see", "seem", "seemed", "seeming", "seems", "several", "she", "should", "show",
    "since", "six", "sixty", "so", "some", "somehow", "someone", "something", "sometime",
    "sometimes", "somewhere", "still", "such", "take", "ten", "than", "that", "the", "their",
    "them", "themselves", "then", "thence", "there", "thereafter", "thereby", "therefore",
    "therein", "thereupon", "these", "they", "third", "this", "those", "though", "three", "through",
    "throughout", "thru", "thus", "to", "together", "too", "toward", "towards", "twelve", "twenty",
    "two", "un", "under", "until", "up", "upon", "us", "very", "via", "was", "we", "well", "were",
    "what", "whatever", "when", "whence", "whenever", "where", "whereafter", "whereas", "whereby",
    "wherein", "whereupon", "wherever", "whether", "which", "while", "whither", "who", "whoever",
    "whole", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you",
    "your", "yours", "yourself", "yourselves",
];

/// Whether `word` (lowercase) is one of [`ENGLISH_STOP_WORDS`].
pub fn is_english_stop_word(word: &str) -> bool {
    ENGLISH_STOP_WORDS.binary_search(&word).is_ok()
}

/// Which tokens are dropped before the vocabulary is built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StopWords {
    /// Keep every token.
    None,
    /// Drop [`ENGLISH_STOP_WORDS`].
    #[default]
    English,
    /// Drop these words (lowercase; build with [`StopWords::custom`], which lowercases).
    Custom(BTreeSet<String>),
    /// Drop [`ENGLISH_STOP_WORDS`] and these words (lowercase; build with
    /// [`StopWords::english_and`]).
    EnglishAnd(BTreeSet<String>),
}

impl StopWords {
    /// Your own list; the words are lowercased, since tokens are.
    pub fn custom<I, S>(words: I) -> StopWords
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        StopWords::Custom(lowercased(words))
    }

    /// The English list plus your own words (lowercased).
    pub fn english_and<I, S>(words: I) -> StopWords
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        StopWords::EnglishAnd(lowercased(words))
    }

    /// Whether the (lowercase) token `word` is dropped.
    pub fn contains(&self, word: &str) -> bool {
        match self {
            StopWords::None => false,
            StopWords::English => is_english_stop_word(word),
            StopWords::Custom(set) => set.contains(word),
            StopWords::EnglishAnd(set) => is_english_stop_word(word) || set.contains(word),
        }
    }
}

fn lowercased<I, S>(words: I) -> BTreeSet<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| w.as_ref().to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_lowercase() {
        for pair in ENGLISH_STOP_WORDS.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for w in ENGLISH_STOP_WORDS {
            assert_eq!(w, w.to_lowercase());
        }
    }
}
