//! A generated corpus with known topics.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The topics of [`synthetic_corpus`]: a name and 30 words, most characteristic first.
#[rustfmt::skip]
pub const SYNTHETIC_TOPICS: [(&str, [&str; 30]); 5] = [
    ("sports", [
        "team", "game", "season", "coach", "players", "league", "score", "goal", "match",
        "championship", "win", "defense", "striker", "stadium", "fans", "tournament", "injury",
        "referee", "playoffs", "victory", "midfielder", "penalty", "trophy", "athletes", "training",
        "rival", "draft", "halftime", "captain", "scored",
    ]),
    ("cooking", [
        "recipe", "oven", "flour", "butter", "garlic", "sauce", "bake", "minutes", "salt", "onion",
        "pan", "dough", "chicken", "pepper", "simmer", "ingredients", "sugar", "kitchen", "roast",
        "tablespoon", "chopped", "olive", "oil", "dinner", "soup", "stir", "fresh", "cheese",
        "bread", "delicious",
    ]),
    ("space", [
        "nasa", "orbit", "planet", "spacecraft", "launch", "mission", "telescope", "mars", "moon",
        "astronauts", "rocket", "galaxy", "solar", "satellite", "gravity", "asteroid", "stars",
        "universe", "probe", "lunar", "jupiter", "station", "cosmic", "astronomers", "comet",
        "observatory", "nebula", "crew", "payload", "eclipse",
    ]),
    ("finance", [
        "market", "stocks", "investors", "shares", "bank", "interest", "rates", "inflation",
        "earnings", "bonds", "dividend", "portfolio", "economy", "trading", "prices", "revenue",
        "profit", "quarterly", "fund", "debt", "credit", "equity", "analysts", "currency", "loan",
        "banks", "recession", "valuation", "budget", "tax",
    ]),
    ("music", [
        "album", "band", "song", "guitar", "concert", "tour", "lyrics", "singer", "drummer",
        "melody", "chorus", "studio", "record", "vocals", "piano", "audience", "stage", "rhythm",
        "jazz", "orchestra", "bass", "tracks", "festival", "composer", "symphony", "ballad",
        "acoustic", "chords", "tempo", "encore",
    ]),
];

/// Words shared by every topic: stop words (removed by
/// [`StopWords::English`](super::StopWords::English)) and common words that survive it and
/// blur the topics.
#[rustfmt::skip]
const BACKGROUND_STOP: [&str; 24] = [
    "the", "and", "of", "to", "in", "is", "was", "it", "for", "on", "with", "as", "that", "this",
    "they", "at", "by", "from", "but", "we", "after", "their", "were", "has",
];
#[rustfmt::skip]
const BACKGROUND_COMMON: [&str; 20] = [
    "people", "time", "year", "day", "good", "great", "week", "said", "new", "world", "big", "long",
    "today", "report", "news", "night", "local", "little", "say", "told",
];

/// A corpus drawn by [`synthetic_corpus`], with the topic that generated each document.
#[derive(Debug, Clone)]
pub struct SyntheticCorpus {
    texts: Vec<String>,
    topics: Vec<usize>,
}

impl SyntheticCorpus {
    /// The documents.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }
    /// The generating topic of each document, an index into [`SYNTHETIC_TOPICS`].
    pub fn topics(&self) -> &[usize] {
        &self.topics
    }
    /// The topic names, in the order of [`SYNTHETIC_TOPICS`].
    pub fn topic_names(&self) -> Vec<&'static str> {
        SYNTHETIC_TOPICS.iter().map(|(name, _)| *name).collect()
    }
}

/// Draw `docs_per_topic` documents for each of the five [`SYNTHETIC_TOPICS`] (sports, cooking,
/// space, finance, music), shuffled, reproducibly from `seed`.
///
/// Each document has 40 to 100 words in sentences of 5 to 12 words (capitalised, with commas,
/// full stops and the odd number, so the tokenizer has work to do). Each word is drawn from
///
/// - the document's topic, with probability 0.45: word `i` of its list with weight
///   `1/(i + 1)^0.7` (a Zipf-like tail);
/// - another topic chosen per word, with probability 0.10 (so topics share documents' words);
/// - common words shared by all topics, 0.15, and stop words, 0.30.
pub fn synthetic_corpus(docs_per_topic: usize, seed: u64) -> SyntheticCorpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = SYNTHETIC_TOPICS.len();
    let weights: Vec<f64> = (0..30).map(|i| 1.0 / ((i + 1) as f64).powf(0.7)).collect();
    let total: f64 = weights.iter().sum();
    let mut topics: Vec<usize> = (0..k * docs_per_topic).map(|d| d % k).collect();
    topics.shuffle(&mut rng);
    let texts = topics
        .iter()
        .map(|&topic| {
            let n_words = rng.random_range(40..=100);
            let mut text = String::new();
            let mut left_in_sentence = 0usize;
            for w in 0..n_words {
                let u: f64 = rng.random();
                let word = if u < 0.45 {
                    topic_word(&mut rng, topic, &weights, total)
                } else if u < 0.55 {
                    let other = (topic + rng.random_range(1..k)) % k;
                    topic_word(&mut rng, other, &weights, total)
                } else if u < 0.70 {
                    BACKGROUND_COMMON[rng.random_range(0..BACKGROUND_COMMON.len())]
                } else {
                    BACKGROUND_STOP[rng.random_range(0..BACKGROUND_STOP.len())]
                };
                if left_in_sentence == 0 {
                    if w > 0 {
                        text.push_str(". ");
                    }
                    left_in_sentence = rng.random_range(5..=12);
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push_str(if rng.random::<f64>() < 0.08 {
                        ", "
                    } else {
                        " "
                    });
                    if rng.random::<f64>() < 0.03 {
                        text.push_str(&rng.random_range(1..2030).to_string());
                        text.push(' ');
                    }
                    text.push_str(word);
                }
                left_in_sentence -= 1;
            }
            text.push('.');
            text
        })
        .collect();
    SyntheticCorpus { texts, topics }
}

fn topic_word(rng: &mut StdRng, topic: usize, weights: &[f64], total: f64) -> &'static str {
    let mut u = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return SYNTHETIC_TOPICS[topic].1[i];
        }
        u -= w;
    }
    SYNTHETIC_TOPICS[topic].1[weights.len() - 1]
}
