//! The one parser for `key=value,...` option strings (dataset spec options,
//! `synth:` options, `--lora`), and the one rule for on/off values. Callers
//! turn a `KvError` into their own error, naming their file or flag.

use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("`{0}` is not key=value")]
    NotKeyValue(String),
    #[error("{key}=`{value}` is not {expected}")]
    BadValue { key: String, value: String, expected: String },
    #[error("unknown option `{key}` ({known})")]
    Unknown { key: String, known: String },
}

/// One `key=value` of an option string, both trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
}

impl Pair {
    /// The value as a `T`, or an error saying what was expected.
    pub fn parse<T: FromStr>(&self, expected: &str) -> Result<T, KvError> {
        self.value.parse().map_err(|_| self.bad(expected))
    }

    /// On/off: `on|yes|true|1` or `off|no|false|0`, in any case.
    pub fn switch(&self) -> Result<bool, KvError> {
        match self.value.to_ascii_lowercase().as_str() {
            "on" | "yes" | "true" | "1" => Ok(true),
            "off" | "no" | "false" | "0" => Ok(false),
            _ => Err(self.bad("on or off")),
        }
    }

    pub fn bad(&self, expected: &str) -> KvError {
        KvError::BadValue { key: self.key.clone(), value: self.value.clone(), expected: expected.to_string() }
    }

    pub fn unknown(&self, known: &[&str]) -> KvError {
        KvError::Unknown { key: self.key.clone(), known: known.join(", ") }
    }
}

/// Splits `text` at commas into pairs. An item without `=` continues the
/// previous pair's value when that key is one of `lists` (`targets=q,k,v`);
/// anywhere else it is an error. Empty items are skipped.
pub fn pairs(text: &str, lists: &[&str]) -> Result<Vec<Pair>, KvError> {
    let mut out: Vec<Pair> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push(Pair { key: k.trim().to_string(), value: v.trim().to_string() }),
            _ => match out.last_mut() {
                Some(last) if lists.contains(&last.key.as_str()) => {
                    last.value.push(',');
                    last.value.push_str(item);
                }
                _ => return Err(KvError::NotKeyValue(item.to_string())),
            },
        }
    }
    Ok(out)
}

/// `NAME[:ARG,ARG,...]`: a method or an intervention with positional
/// arguments (`smoothgrad:8,0.15`, `ig:32,blur`, `adaptvis:0.5,0.8,1.2`,
/// `scaling:2`). Numbers follow [`numbers`]' rules, and every refusal names
/// the argument and the whole spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    pub text: &'a str,
    pub name: &'a str,
    pub args: Vec<&'a str>,
}

impl<'a> Call<'a> {
    pub fn parse(text: &'a str) -> Call<'a> {
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let args = if rest.trim().is_empty() { Vec::new() } else { rest.split(',').map(str::trim).collect() };
        Call { text, name: name.trim(), args }
    }

    /// Refuses more than `n` arguments.
    pub fn at_most(&self, n: usize) -> Result<&Self, String> {
        if self.args.len() > n {
            return Err(format!("`{}` takes at most {n} argument{}", self.text, if n == 1 { "" } else { "s" }));
        }
        Ok(self)
    }

    fn read<T>(&self, i: usize, default: T, rule: fn(&str) -> Result<T, String>) -> Result<T, String> {
        match self.args.get(i) {
            None => Ok(default),
            Some(s) => rule(s).map_err(|e| format!("argument {} of `{}`: {e}", i + 1, self.text)),
        }
    }

    /// A whole number of at least 1 (samples, steps).
    pub fn count(&self, i: usize, default: usize) -> Result<usize, String> {
        self.read(i, default, numbers::at_least_one)
    }

    /// A finite number above 0 (a noise level, an attention weight).
    pub fn positive(&self, i: usize, default: f64) -> Result<f64, String> {
        self.read(i, default, numbers::positive)
    }

    /// A number from 0 to 1 (a confidence threshold).
    pub fn fraction(&self, i: usize, default: f64) -> Result<f64, String> {
        self.read(i, default, numbers::fraction)
    }

    /// The argument as written.
    pub fn word(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).copied()
    }
}

/// clap value parsers for numeric flags, so a bad number is refused when
/// the command line is parsed, with the flag's name, not steps later.
pub mod numbers {
    /// A whole number of at least 1 (batch sizes, step and token counts).
    pub fn at_least_one(s: &str) -> Result<usize, String> {
        match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("`{s}` is not a whole number of at least 1")),
        }
    }

    /// The most sampled answers per question (`eval --samples`, GRPO's
    /// `--group`): their KV caches are held at once.
    pub const MAX_SAMPLES: usize = 1024;

    /// A count of sampled answers: 1 to [`MAX_SAMPLES`].
    pub fn sample_count(s: &str) -> Result<usize, String> {
        match at_least_one(s)? {
            n if n <= MAX_SAMPLES => Ok(n),
            _ => Err(format!("`{s}` is more than {MAX_SAMPLES} samples: each holds its own KV cache")),
        }
    }

    /// Any finite number (steering strengths, which may be negative).
    pub fn finite(s: &str) -> Result<f64, String> {
        number(s)
    }

    fn number(s: &str) -> Result<f64, String> {
        match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("`{s}` is not a finite number")),
        }
    }

    /// A finite number above 0 (learning rates, clipping norms, temperatures).
    pub fn positive(s: &str) -> Result<f64, String> {
        number(s).and_then(|x| if x > 0.0 { Ok(x) } else { Err(format!("`{s}` must be above 0")) })
    }

    /// A finite number of 0 or more (weight decay).
    pub fn non_negative(s: &str) -> Result<f64, String> {
        number(s).and_then(|x| if x >= 0.0 { Ok(x) } else { Err(format!("`{s}` must be 0 or more")) })
    }

    /// A fraction from 0 to 1 (warmup ratio, replay, top-p).
    pub fn fraction(s: &str) -> Result<f64, String> {
        number(s).and_then(|x| if (0.0..=1.0).contains(&x) { Ok(x) } else { Err(format!("`{s}` must be from 0 to 1")) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_names_and_checked_arguments() {
        let c = Call::parse("smoothgrad:8, 0.2");
        assert_eq!((c.name, c.args.clone()), ("smoothgrad", vec!["8", "0.2"]));
        assert_eq!((c.count(0, 16), c.positive(1, 0.15), c.positive(2, 0.5)), (Ok(8), Ok(0.2), Ok(0.5)));
        assert_eq!(Call::parse("grad").args, Vec::<&str>::new());
        let nan = Call::parse("smoothgrad:8,NaN").positive(1, 0.15).unwrap_err();
        assert!(nan.contains("argument 2 of `smoothgrad:8,NaN`") && nan.contains("not a finite number"), "{nan}");
        assert!(Call::parse("ig:-5").count(0, 32).unwrap_err().contains("`-5` is not a whole number of at least 1"));
        assert!(Call::parse("scaling:1,2").at_most(1).unwrap_err().contains("takes at most 1 argument"));
        assert!(Call::parse("adaptvis:1.5,1,1").fraction(0, 0.5).unwrap_err().contains("from 0 to 1"));
    }

    #[test]
    fn numbers_refuse_nan_infinity_and_out_of_range() {
        use numbers::*;
        for bad in ["NaN", "nan", "inf", "-inf", "x", ""] {
            assert!(positive(bad).is_err() && non_negative(bad).is_err() && fraction(bad).is_err(), "{bad}");
        }
        assert!(positive("0").is_err() && positive("-1e-4").is_err());
        assert_eq!(positive("1e-4"), Ok(1e-4));
        assert!(non_negative("-0.1").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(fraction("2").is_err() && fraction("-0.5").is_err());
        assert_eq!(fraction("1"), Ok(1.0));
        assert!(at_least_one("0").is_err() && at_least_one("-1").is_err() && at_least_one("1.5").is_err());
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(finite("nan").is_err() && finite("-inf").is_err());
        assert_eq!(finite("-0.5"), Ok(-0.5));
    }

    #[test]
    fn pairs_lists_and_errors() {
        let p = pairs(" r=16 , targets=q,k,v,alpha=32,,", &["targets"]).unwrap();
        let got: Vec<(&str, &str)> = p.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert_eq!(got, [("r", "16"), ("targets", "q,k,v"), ("alpha", "32")]);
        assert_eq!(pairs("seed=1,oops", &[]).unwrap_err(), KvError::NotKeyValue("oops".into()));
        assert_eq!(pairs("=3", &[]).unwrap_err().to_string(), "`=3` is not key=value");
        assert!(pairs("", &[]).unwrap().is_empty());
    }

    #[test]
    fn one_rule_for_switches() {
        let p = |v: &str| Pair { key: "flip".into(), value: v.into() };
        for on in ["on", "yes", "TRUE", "1"] {
            assert_eq!(p(on).switch(), Ok(true), "{on}");
        }
        for off in ["off", "No", "false", "0"] {
            assert_eq!(p(off).switch(), Ok(false), "{off}");
        }
        assert_eq!(p("maybe").switch().unwrap_err().to_string(), "flip=`maybe` is not on or off");
        assert_eq!(p("x").parse::<u32>("a whole number").unwrap_err().to_string(), "flip=`x` is not a whole number");
        assert_eq!(p("x").unknown(&["a", "b"]).to_string(), "unknown option `flip` (a, b)");
    }
}
