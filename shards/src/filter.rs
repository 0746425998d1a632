//! `--where` expressions over manifest columns.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | test
//! test    := value (("==" | "=" | "!=" | "<" | "<=" | ">" | ">=") value)?
//!          | value "is" ["not"] "null"
//!          | value ["not"] "in" "(" value ("," value)* ")"
//! value   := column | 'string' | number | true | false | null | "(" expr ")"
//! column  := identifier | "quoted name" | `quoted name`
//! ```
//! Comparisons involving null are false (use `is null`); numbers compare
//! numerically whatever their column type. Unknown columns are an error when
//! the expression is bound to a manifest.

use std::fmt;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
    RecordBatch, StringArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};

/// A parse or bind error, with the position in the expression.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("in --where expression at character {pos}: {message}")]
pub struct FilterError {
    pub pos: usize,
    pub message: String,
}

/// A cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "'{s}'"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String, usize),
    Lit(Value),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, CmpOpPub, Box<Expr>),
    IsNull(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
}

/// Comparison operator (public wrapper so `Expr` can be inspected).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CmpOpPub(CmpOp);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos, message: &str| FilterError { pos, message: message.to_string() };
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1
            }
            ',' => {
                out.push((Tok::Comma, pos));
                i += 1
            }
            '\'' | '"' | '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, ch)) = chars.get(i) else { return Err(err(pos, "unterminated quote")) };
                    i += 1;
                    if ch == c {
                        // A doubled quote is a literal quote.
                        if chars.get(i).is_some_and(|&(_, n)| n == c) {
                            s.push(c);
                            i += 1;
                            continue;
                        }
                        break;
                    }
                    s.push(ch);
                }
                out.push((if c == '\'' { Tok::Str(s) } else { Tok::Quoted(s) }, pos));
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).map(|&(_, n)| n);
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => ("==", 2),
                    ('=', _) => ("==", 1),
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', _) => ("<", 1),
                    ('>', Some('=')) => (">=", 2),
                    ('>', _) => (">", 1),
                    _ => return Err(err(pos, "unexpected '!'")),
                };
                out.push((Tok::Op(op), pos));
                i += len;
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|&(_, c)| c).collect();
                let n = text.parse::<f64>().map_err(|_| err(pos, &format!("bad number `{text}`")))?;
                out.push((Tok::Num(n), pos));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().map(|&(_, c)| c).collect()), pos));
            }
            other => return Err(err(pos, &format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    i: usize,
    columns: &'a [String],
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(t, _)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |(_, p)| *p)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError { pos: self.pos(), message: message.into() })
    }
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.test()
    }
    fn test(&mut self) -> Result<Expr, FilterError> {
        let left = self.value()?;
        if let Some(Tok::Op(op)) = self.peek() {
            let op = match *op {
                "==" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            self.i += 1;
            let right = self.value()?;
            return Ok(Expr::Cmp(Box::new(left), CmpOpPub(op), Box::new(right)));
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return self.err("expected `null` after `is`");
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let save = self.i;
        let negated = self.keyword("not");
        if self.keyword("in") {
            if self.peek() != Some(&Tok::LParen) {
                return self.err("expected `(` after `in`");
            }
            self.i += 1;
            let mut items = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.i += 1;
                items.push(self.value()?);
            }
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected `)` to close the `in` list");
            }
            self.i += 1;
            return Ok(Expr::In(Box::new(left), items, negated));
        }
        self.i = save;
        Ok(left)
    }
    fn column(&self, name: &str) -> Result<Expr, FilterError> {
        match self.columns.iter().position(|c| c == name) {
            Some(i) => Ok(Expr::Column(name.to_string(), i)),
            None => self.err(format!("unknown column `{name}` (columns: {})", self.columns.join(", "))),
        }
    }
    fn value(&mut self) -> Result<Expr, FilterError> {
        let Some((tok, _)) = self.toks.get(self.i).cloned() else { return self.err("expression ends too early") };
        let expr = match tok {
            Tok::LParen => {
                self.i += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected `)`");
                }
                e
            }
            Tok::Str(s) => Expr::Lit(Value::Str(s)),
            Tok::Num(n) => Expr::Lit(Value::Num(n)),
            Tok::Quoted(name) => self.column(&name)?,
            Tok::Ident(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "null" => Expr::Lit(Value::Null),
                _ => self.column(&word)?,
            },
            other => return self.err(format!("unexpected {other:?}")),
        };
        self.i += 1;
        Ok(expr)
    }
}

/// Parses an expression against a list of column names.
pub fn parse(src: &str, columns: &[String]) -> Result<Expr, FilterError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, i: 0, columns, end: src.len() };
    let e = p.or()?;
    if p.i != p.toks.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

/// The value of a cell, for any column type a manifest has.
pub fn cell(array: &ArrayRef, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    let a = array.as_any();
    macro_rules! num {
        ($($t:ty),*) => {$(
            if let Some(x) = a.downcast_ref::<$t>() {
                return Value::Num(x.value(i) as f64);
            }
        )*};
    }
    num!(
        UInt8Array,
        UInt16Array,
        UInt32Array,
        UInt64Array,
        Int8Array,
        Int16Array,
        Int32Array,
        Int64Array,
        Float32Array,
        Float64Array
    );
    if let Some(x) = a.downcast_ref::<StringArray>() {
        return Value::Str(x.value(i).to_string());
    }
    if let Some(x) = a.downcast_ref::<BooleanArray>() {
        return Value::Bool(x.value(i));
    }
    Value::Null
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Num(y)) => (*x as u8 as f64).partial_cmp(y),
        (Value::Num(x), Value::Bool(y)) => x.partial_cmp(&(*y as u8 as f64)),
        // Numeric strings compare with numbers numerically.
        (Value::Str(x), Value::Num(y)) => x.trim().parse::<f64>().ok().and_then(|x| x.partial_cmp(y)),
        (Value::Num(x), Value::Str(y)) => y.trim().parse::<f64>().ok().and_then(|y| x.partial_cmp(&y)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

impl Expr {
    fn value(&self, batch: &RecordBatch, row: usize) -> Value {
        match self {
            Expr::Column(_, i) => cell(batch.column(*i), row),
            Expr::Lit(v) => v.clone(),
            other => Value::Bool(other.matches(batch, row)),
        }
    }

    /// Whether row `row` of `batch` (the batch the expression was parsed
    /// against) satisfies the expression.
    pub fn matches(&self, batch: &RecordBatch, row: usize) -> bool {
        match self {
            Expr::Not(e) => !e.matches(batch, row),
            Expr::And(a, b) => a.matches(batch, row) && b.matches(batch, row),
            Expr::Or(a, b) => a.matches(batch, row) || b.matches(batch, row),
            Expr::Cmp(a, CmpOpPub(op), b) => compare(&a.value(batch, row), *op, &b.value(batch, row)),
            Expr::IsNull(e, negated) => (e.value(batch, row) == Value::Null) != *negated,
            Expr::In(e, items, negated) => {
                let v = e.value(batch, row);
                if v == Value::Null {
                    return false;
                }
                let found = items.iter().any(|item| compare(&v, CmpOp::Eq, &item.value(batch, row)));
                found != *negated
            }
            Expr::Column(..) | Expr::Lit(_) => matches!(self.value(batch, row), Value::Bool(true)),
        }
    }

    /// A boolean mask over the batch.
    pub fn mask(&self, batch: &RecordBatch) -> BooleanArray {
        (0..batch.num_rows()).map(|i| Some(self.matches(batch, i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("view_position", Arc::new(StringArray::from(vec![Some("PA"), Some("AP"), None, Some("LL")])) as ArrayRef),
            ("age_years", Arc::new(Float32Array::from(vec![Some(20.0), Some(70.0), Some(45.0), None])) as ArrayRef),
            (
                "Pleural Effusion",
                Arc::new(Float32Array::from(vec![Some(1.0), Some(-1.0), None, Some(0.0)])) as ArrayRef,
            ),
            ("height", Arc::new(UInt32Array::from(vec![512, 512, 256, 512])) as ArrayRef),
        ])
        .unwrap()
    }

    fn select(src: &str) -> Vec<usize> {
        let b = batch();
        let cols: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        let e = parse(src, &cols).unwrap();
        (0..b.num_rows()).filter(|&i| e.matches(&b, i)).collect()
    }

    #[test]
    fn expressions_select_the_right_rows() {
        assert_eq!(select("view_position == 'PA'"), vec![0]);
        assert_eq!(select("view_position in ('PA', 'AP') and age_years >= 18"), vec![0, 1]);
        assert_eq!(select("view_position is null or age_years is null"), vec![2, 3]);
        assert_eq!(select("not (height = 512)"), vec![2]);
        assert_eq!(select("\"Pleural Effusion\" = 1 or `Pleural Effusion` < 0"), vec![0, 1]);
        assert_eq!(select("view_position not in ('PA')"), vec![1, 3]);
        assert_eq!(select("age_years > 30 AND age_years < 50"), vec![2]);
        assert_eq!(select("view_position != 'PA'"), vec![1, 3], "null never compares");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cols = vec!["a".to_string()];
        let e = parse("b == 1", &cols).unwrap_err();
        assert!(e.message.contains("unknown column `b`"), "{e}");
        assert_eq!(parse("a == 'x", &cols).unwrap_err().pos, 5);
        assert!(parse("a == 1 extra", &cols).is_err());
        assert!(parse("a in 1", &cols).is_err());
        assert!(parse("(a == 1", &cols).is_err());
    }
}
