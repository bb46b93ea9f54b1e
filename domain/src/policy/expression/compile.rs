//! From CEL source to the typed tree (`tree`): cel-rust parses (and expands
//! `has()`), we resolve every name to a slot, check every operator's and
//! function's types, refuse what the language subset leaves out, and fold
//! what is constant. The module header (`super`) lists the subset.

use super::error::{ExpressionError, Position, Type, closest};
use super::tree::{Arith, Bool, Cmp, Num, Str, StrTest, TxStr, Var};
use crate::features::{CATALOGUE, F};
use crate::geo::CountryCode;
use crate::money::Currency;
use crate::transaction::{DeviceType, PaymentMethod, TransactionType};
use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue, SelectExpr, SourceInfo, operators};

/// Longer than any sensible rule; bounds the parser's work.
pub(super) const MAX_CHARS: usize = 4000;
/// Bounds the recursion of compiling and of evaluating.
pub(super) const MAX_DEPTH: usize = 100;
/// The compiling thread's stack (see [`compile`]).
const PARSER_STACK: usize = 64 << 20;

/// The transaction fields an expression can read, as `tx.NAME`.
const TX_FIELDS: &[(&str, Var)] = &[
    ("amount", Var::Amount),
    ("currency", Var::Str(TxStr::Currency)),
    ("customer_id", Var::Str(TxStr::CustomerId)),
    ("merchant_id", Var::Str(TxStr::MerchantId)),
    ("category", Var::Str(TxStr::Category)),
    ("transaction_type", Var::Str(TxStr::TransactionType)),
    ("payment_method", Var::Str(TxStr::PaymentMethod)),
    ("device_type", Var::Str(TxStr::DeviceType)),
    ("country", Var::Str(TxStr::Country)),
    ("city", Var::Str(TxStr::City)),
    ("hour_local", Var::HourLocal),
    ("card_present", Var::CardPresent),
];

/// Names analysts reach for that are spelt differently here (the JSON
/// API's names, the feature's name).
const TX_ALIASES: &[(&str, &str)] = &[
    ("merchant_category", "tx.category"),
    ("user_id", "tx.customer_id"),
    ("customer", "tx.customer_id"),
    ("merchant", "tx.merchant_id"),
    ("local_hour", "tx.hour_local"),
    ("hour", "tx.hour_local"),
    ("type", "tx.transaction_type"),
    ("kind", "tx.transaction_type"),
    ("device", "tx.device_type"),
    ("method", "tx.payment_method"),
    ("is_card_present", "tx.card_present"),
    ("location", "tx.country or tx.city"),
];

/// The functions and methods of the subset.
const FUNCTIONS: &[&str] = &[
    "size",
    "startsWith",
    "endsWith",
    "contains",
    "lowerAscii",
    "double",
    "int",
    "max",
    "min",
];

/// A compiled expression: the tree, and what it reads in source order.
pub(super) struct Output {
    pub root: Bool,
    pub reads: Vec<String>,
    pub vars: Vec<Var>,
}

/// Parses and type-checks `source`; the result must be a bool.
pub(super) fn compile(source: &str) -> Result<Output, ExpressionError> {
    if source.trim().is_empty() {
        return Err(ExpressionError::Empty);
    }
    let chars = source.chars().count();
    if chars > MAX_CHARS {
        return Err(ExpressionError::TooLong {
            chars,
            max: MAX_CHARS,
        });
    }
    // The parser (ANTLR-generated, recursive descent) needs a deep stack:
    // in a debug build 15 nested parentheses overflow 2 MB, which aborts
    // the process. Its own recursion limit (96 levels) keeps it within this
    // stack, reserved (not committed) for the few microseconds a compile
    // takes, at publish or load time only. A panic in it refuses the
    // expression instead of taking the service down.
    let worker = std::thread::Builder::new()
        .name("expression-compile".to_owned())
        .stack_size(PARSER_STACK);
    std::thread::scope(
        |scope| match worker.spawn_scoped(scope, || compile_here(source)) {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(ExpressionError::Syntax {
                    at: Position { line: 1, column: 1 },
                    message: "the parser could not read this expression".to_owned(),
                })
            }),
            Err(_) => Err(ExpressionError::Syntax {
                at: Position { line: 1, column: 1 },
                message: "no thread to parse it on (try again)".to_owned(),
            }),
        },
    )
}

/// [`compile`] on the current thread.
fn compile_here(source: &str) -> Result<Output, ExpressionError> {
    let program = match cel::Program::compile(source) {
        Ok(program) => program,
        Err(errors) => {
            let (at, message) = errors.errors.first().map_or_else(
                || (Position { line: 1, column: 1 }, "cannot be read".to_owned()),
                |e| {
                    let at = Position {
                        line: u32::try_from(e.pos.0.max(1)).unwrap_or(1),
                        column: u32::try_from(e.pos.1.max(1)).unwrap_or(1),
                    };
                    (at, syntax_message(&e.msg))
                },
            );
            return Err(ExpressionError::Syntax { at, message });
        }
    };
    let mut compiler = Compiler {
        source,
        info: program.source_info(),
        reads: Vec::new(),
        vars: Vec::new(),
    };
    match compiler.expr(program.expression(), 0)? {
        Typed::Bool(root) => Ok(Output {
            root,
            reads: compiler.reads,
            vars: compiler.vars,
        }),
        other => Err(ExpressionError::NotBool { found: other.ty() }),
    }
}

/// ANTLR's messages, shortened for an analyst: the token it stumbled on
/// rather than the grammar's list of what it expected, with a hint for the
/// usual slips (`=`, `and`, an unclosed string).
fn syntax_message(message: &str) -> String {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    if message.contains("Recursion limit") {
        return "the expression is nested too deeply".to_owned();
    }
    for prefix in ["mismatched input ", "extraneous input "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let token = rest.split(" expecting").next().unwrap_or(rest).trim();
            let hint = match token {
                "'<EOF>'" => return "the expression ends too early".to_owned(),
                "'and'" | "'or'" | "'not'" => " (write &&, || and !)",
                _ => "",
            };
            return format!("unexpected {token}{hint}");
        }
    }
    if let Some(rest) = message.strip_prefix("token recognition error at: ") {
        // The text comes quoted: `'abc` is reported as `''abc'`.
        let text = rest.trim();
        let text = text.strip_prefix('\'').unwrap_or(text);
        if text.starts_with(['\'', '"']) {
            return "a string is not closed".to_owned();
        }
        if text.starts_with('=') && !text.starts_with("==") {
            return "unexpected '=' (compare with ==)".to_owned();
        }
        return format!("unexpected character {}", rest.trim());
    }
    message.replace("'<EOF>'", "the end")
}

/// A checked subexpression and its type.
enum Typed {
    Bool(Bool),
    Num(Num),
    Str(Str),
}

impl Typed {
    fn ty(&self) -> Type {
        match self {
            Typed::Bool(_) => Type::Bool,
            Typed::Num(_) => Type::Number,
            Typed::Str(_) => Type::String,
        }
    }
}

struct Compiler<'s> {
    source: &'s str,
    info: &'s SourceInfo,
    reads: Vec<String>,
    vars: Vec<Var>,
}

fn type_error(at: Position, message: String) -> ExpressionError {
    ExpressionError::Type { at, message }
}

impl Compiler<'_> {
    /// Where node `id` starts (operators: the operator; calls: the `(`).
    fn at(&self, id: u64) -> Position {
        let offset = self.info.offset_for(id).map_or(0, |(start, _)| start);
        Position::at_byte(self.source, offset as usize)
    }

    /// Where the name of call `id` starts (the parser places calls at `(`).
    fn at_name(&self, id: u64, name: &str) -> Position {
        let paren = self.info.offset_for(id).map_or(0, |(start, _)| start) as usize;
        let start = paren.saturating_sub(name.len());
        let offset = if self.source.get(start..paren) == Some(name) {
            start
        } else {
            paren
        };
        Position::at_byte(self.source, offset)
    }

    fn unsupported(&self, id: u64, what: &str) -> ExpressionError {
        ExpressionError::Unsupported {
            at: self.at(id),
            what: what.to_owned(),
        }
    }

    fn expr(&mut self, e: &IdedExpr, depth: usize) -> Result<Typed, ExpressionError> {
        if depth >= MAX_DEPTH {
            return Err(ExpressionError::TooDeep {
                at: self.at(e.id),
                max: MAX_DEPTH,
            });
        }
        let depth = depth + 1;
        match &e.expr {
            Expr::Literal(literal) => self.literal(e.id, literal),
            Expr::Ident(name) => Err(self.bare_name(e.id, name)),
            Expr::Select(select) => self.select(select),
            Expr::Call(call) => self.call(e, call, depth),
            Expr::List(_) => {
                Err(self.unsupported(e.id, "a list is only allowed after `in` and is"))
            }
            Expr::Map(_) => Err(self.unsupported(e.id, "maps are")),
            Expr::Struct(_) => Err(self.unsupported(e.id, "messages are")),
            Expr::Comprehension(_) => Err(self.unsupported(
                e.id,
                "list macros (all, exists, exists_one, map, filter) are",
            )),
            Expr::Unspecified => Err(ExpressionError::Syntax {
                at: self.at(e.id),
                message: "incomplete expression".to_owned(),
            }),
        }
    }

    fn literal(&self, id: u64, literal: &LiteralValue) -> Result<Typed, ExpressionError> {
        Ok(match literal {
            LiteralValue::Boolean(b) => Typed::Bool(Bool::Const(*b.inner())),
            LiteralValue::Int(i) => Typed::Num(Num::Const(*i.inner() as f64)),
            LiteralValue::UInt(u) => Typed::Num(Num::Const(*u.inner() as f64)),
            LiteralValue::Double(d) => Typed::Num(Num::Const(*d.inner())),
            LiteralValue::String(s) => Typed::Str(Str::Const(s.inner().into())),
            LiteralValue::Null => {
                return Err(self.unsupported(id, "null (test presence with has(...)) is"));
            }
            LiteralValue::Bytes(_) => return Err(self.unsupported(id, "bytes are")),
        })
    }

    /// An identifier on its own: only `tx` and `f` exist, and only with a
    /// field after them.
    fn bare_name(&self, id: u64, name: &str) -> ExpressionError {
        let at = self.at(id);
        match name {
            "f" => type_error(
                at,
                "f is the feature catalogue, not a value: name a feature, e.g. f.amount".to_owned(),
            ),
            "tx" => type_error(
                at,
                "tx is the transaction, not a value: name a field, e.g. tx.amount".to_owned(),
            ),
            _ => {
                let suggestion = if tx_field(name).is_some() {
                    Some(format!("tx.{name}"))
                } else if feature(name).is_some() {
                    Some(format!("f.{name}"))
                } else {
                    closest(name, CATALOGUE.iter().map(|f| f.name)).map(|c| format!("f.{c}"))
                };
                ExpressionError::UnknownName {
                    at,
                    name: name.to_owned(),
                    suggestion,
                }
            }
        }
    }

    /// `tx.FIELD` / `f.NAME` to the variable it names; `has(x.y)` too
    /// (the parser gives it as a select with `test`).
    fn resolve(&self, select: &SelectExpr) -> Result<(String, Var), ExpressionError> {
        let field = select.field.as_str();
        let at = self.at(select.operand.id);
        match &select.operand.expr {
            Expr::Ident(root) if root == "f" => match feature(field) {
                Some(f) => Ok((format!("f.{field}"), Var::Feature(f))),
                None => Err(ExpressionError::UnknownFeature {
                    at,
                    name: field.to_owned(),
                    suggestion: feature_suggestion(field),
                }),
            },
            Expr::Ident(root) if root == "tx" => match tx_field(field) {
                Some(var) => Ok((format!("tx.{field}"), var)),
                None => Err(ExpressionError::UnknownField {
                    at,
                    name: field.to_owned(),
                    suggestion: field_suggestion(field),
                }),
            },
            Expr::Ident(root) => Err(self.bare_name(select.operand.id, root)),
            // `tx.location.city`: the API's nesting, flattened here.
            Expr::Select(inner) if !inner.test => {
                if matches!(&inner.operand.expr, Expr::Ident(r) if r == "tx")
                    && inner.field == "location"
                    && tx_field(field).is_some()
                {
                    return Err(ExpressionError::UnknownField {
                        at: self.at(inner.operand.id),
                        name: format!("location.{field}"),
                        suggestion: Some(format!("tx.{field}")),
                    });
                }
                let (name, _) = self.resolve(inner)?;
                Err(type_error(
                    self.at(inner.operand.id),
                    format!("{name} is a single value; it has no field {field}"),
                ))
            }
            _ => Err(self.unsupported(
                select.operand.id,
                "selecting a field of a computed value is",
            )),
        }
    }

    fn record(&mut self, name: String, var: Var) {
        if !self.reads.contains(&name) {
            self.reads.push(name);
            self.vars.push(var);
        }
    }

    fn select(&mut self, select: &SelectExpr) -> Result<Typed, ExpressionError> {
        let (name, var) = self.resolve(select)?;
        self.record(name, var);
        if select.test {
            // has(): known, for a feature; present, for a transaction field.
            return Ok(Typed::Bool(match var {
                Var::Feature(f) => Bool::Known(f),
                Var::HourLocal => Bool::Known(F::LocalHour),
                Var::Str(TxStr::CustomerId) | Var::Amount | Var::CardPresent => Bool::Const(true),
                Var::Str(field) => Bool::Present(field),
            }));
        }
        Ok(match var {
            Var::Feature(f) => Typed::Num(Num::Feature(f)),
            Var::Amount => Typed::Num(Num::Amount),
            Var::HourLocal => Typed::Num(Num::Feature(F::LocalHour)),
            Var::CardPresent => Typed::Bool(Bool::CardPresent),
            Var::Str(field) => Typed::Str(Str::Field(field)),
        })
    }

    /// The `N` operands of an operator, checked in source order.
    fn operands<const N: usize>(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
    ) -> Result<[Typed; N], ExpressionError> {
        let mut out = Vec::with_capacity(N);
        for arg in &call.args {
            out.push(self.expr(arg, depth)?);
        }
        out.try_into().map_err(|_| ExpressionError::Syntax {
            at: self.at(e.id),
            message: format!("{} needs {N} operands", call.func_name),
        })
    }

    fn call(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, ExpressionError> {
        let at = self.at(e.id);
        let name = call.func_name.as_str();
        match name {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                let and = name == operators::LOGICAL_AND;
                match self.operands(e, call, depth)? {
                    [Typed::Bool(a), Typed::Bool(b)] => {
                        Ok(Typed::Bool(if and { and_of(a, b) } else { or_of(a, b) }))
                    }
                    [a, b] => Err(type_error(
                        at,
                        format!(
                            "`{}` needs true or false on both sides, not {} and {}",
                            if and { "&&" } else { "||" },
                            a.ty(),
                            b.ty()
                        ),
                    )),
                }
            }
            operators::LOGICAL_NOT => match self.operands(e, call, depth)? {
                [Typed::Bool(Bool::Const(b))] => Ok(Typed::Bool(Bool::Const(!b))),
                [Typed::Bool(a)] => Ok(Typed::Bool(Bool::Not(Box::new(a)))),
                [a] => Err(type_error(
                    at,
                    format!("`!` needs true or false, not {}", a.ty().with_article()),
                )),
            },
            operators::NEGATE => match self.operands(e, call, depth)? {
                [Typed::Num(Num::Const(v))] => Ok(Typed::Num(Num::Const(-v))),
                [Typed::Num(a)] => Ok(Typed::Num(Num::Neg(Box::new(a)))),
                [a] => Err(type_error(
                    at,
                    format!("`-` needs a number, not {}", a.ty().with_article()),
                )),
            },
            operators::CONDITIONAL => self.conditional(e, call, depth),
            operators::EQUALS => self.compare(e, call, depth, Cmp::Eq),
            operators::NOT_EQUALS => self.compare(e, call, depth, Cmp::Ne),
            operators::LESS => self.compare(e, call, depth, Cmp::Lt),
            operators::LESS_EQUALS => self.compare(e, call, depth, Cmp::Le),
            operators::GREATER => self.compare(e, call, depth, Cmp::Gt),
            operators::GREATER_EQUALS => self.compare(e, call, depth, Cmp::Ge),
            operators::ADD => match self.operands(e, call, depth)? {
                [Typed::Num(a), Typed::Num(b)] => Ok(Typed::Num(arith(Arith::Add, a, b))),
                [Typed::Str(a), Typed::Str(b)] => Ok(Typed::Str(match (a, b) {
                    (Str::Const(a), Str::Const(b)) => Str::Const(format!("{a}{b}").into()),
                    (a, b) => Str::Concat(Box::new(a), Box::new(b)),
                })),
                [a, b] => Err(type_error(
                    at,
                    format!("cannot add {} and {}", a.ty(), b.ty()),
                )),
            },
            operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
                let (op, symbol) = match name {
                    operators::SUBSTRACT => (Arith::Sub, "-"),
                    operators::MULTIPLY => (Arith::Mul, "*"),
                    operators::DIVIDE => (Arith::Div, "/"),
                    _ => (Arith::Rem, "%"),
                };
                match self.operands(e, call, depth)? {
                    [Typed::Num(a), Typed::Num(b)] => Ok(Typed::Num(arith(op, a, b))),
                    [a, b] => Err(type_error(
                        at,
                        format!("`{symbol}` needs numbers, not {} and {}", a.ty(), b.ty()),
                    )),
                }
            }
            operators::IN => self.in_list(e, call, depth),
            operators::INDEX | operators::OPT_INDEX => {
                Err(self.unsupported(e.id, "indexing with [ ] is"))
            }
            operators::OPT_SELECT => Err(self.unsupported(e.id, "optional selection is")),
            _ => self.function(e, call, depth),
        }
    }

    fn conditional(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, ExpressionError> {
        let at = self.at(e.id);
        let [condition, yes, no] = self.operands(e, call, depth)?;
        let Typed::Bool(condition) = condition else {
            return Err(type_error(
                at,
                format!(
                    "the condition of `? :` must be true or false, not {}",
                    condition.ty().with_article()
                ),
            ));
        };
        if let Bool::Const(c) = condition {
            return match (yes, no) {
                (yes, no) if yes.ty() == no.ty() => Ok(if c { yes } else { no }),
                (yes, no) => Err(branches_differ(at, &yes, &no)),
            };
        }
        let c = Box::new(condition);
        match (yes, no) {
            (Typed::Bool(a), Typed::Bool(b)) => {
                Ok(Typed::Bool(Bool::If(c, Box::new(a), Box::new(b))))
            }
            (Typed::Num(a), Typed::Num(b)) => Ok(Typed::Num(Num::If(c, Box::new(a), Box::new(b)))),
            (Typed::Str(a), Typed::Str(b)) => Ok(Typed::Str(Str::If(c, Box::new(a), Box::new(b)))),
            (yes, no) => Err(branches_differ(at, &yes, &no)),
        }
    }

    fn compare(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
        op: Cmp,
    ) -> Result<Typed, ExpressionError> {
        let at = self.at(e.id);
        Ok(Typed::Bool(match self.operands(e, call, depth)? {
            [Typed::Num(a), Typed::Num(b)] => compare_numbers(op, a, b),
            [Typed::Str(a), Typed::Str(b)] => {
                if matches!(op, Cmp::Eq | Cmp::Ne) {
                    match (&a, &b) {
                        (Str::Field(field), Str::Const(value))
                        | (Str::Const(value), Str::Field(field)) => {
                            check_value(at, *field, value)?;
                        }
                        _ => {}
                    }
                }
                match (a, b) {
                    (Str::Const(a), Str::Const(b)) => Bool::Const(op.holds(&*a, &*b)),
                    (a, b) => Bool::Str(op, Box::new(a), Box::new(b)),
                }
            }
            [Typed::Bool(a), Typed::Bool(b)] => match (op, a, b) {
                (Cmp::Eq | Cmp::Ne, Bool::Const(a), Bool::Const(b)) => {
                    Bool::Const((a == b) == (op == Cmp::Eq))
                }
                (Cmp::Eq | Cmp::Ne, a, b) => Bool::Equal(op == Cmp::Eq, Box::new(a), Box::new(b)),
                _ => {
                    return Err(type_error(
                        at,
                        "true and false cannot be ordered, only compared with == or !=".to_owned(),
                    ));
                }
            },
            [a, b] => {
                return Err(type_error(
                    at,
                    format!("cannot compare {} with {}", a.ty(), b.ty()),
                ));
            }
        }))
    }

    /// `x in [literal, ...]`.
    fn in_list(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, ExpressionError> {
        let at = self.at(e.id);
        let (Some(left), Some(right), 2) = (call.args.first(), call.args.get(1), call.args.len())
        else {
            return Err(type_error(at, "`in` needs two operands".to_owned()));
        };
        let needle = self.expr(left, depth)?;
        let Expr::List(list) = &right.expr else {
            return Err(type_error(
                at,
                "`in` needs a list written out after it, e.g. tx.country in ['NG', 'RU']"
                    .to_owned(),
            ));
        };
        if !list.optional_indices.is_empty() {
            return Err(self.unsupported(right.id, "optional list elements are"));
        }
        let mut numbers = Vec::new();
        let mut strings: Vec<Box<str>> = Vec::new();
        for element in &list.elements {
            let element_at = self.at(element.id);
            match (&needle, self.expr(element, depth)?) {
                (Typed::Num(_), Typed::Num(Num::Const(v))) => numbers.push(v),
                (Typed::Str(needle), Typed::Str(Str::Const(s))) => {
                    if let Str::Field(field) = needle {
                        check_value(element_at, *field, &s)?;
                    }
                    strings.push(s);
                }
                (Typed::Bool(_), _) => {
                    return Err(type_error(
                        at,
                        "`in` needs a number or a string on its left, not a bool".to_owned(),
                    ));
                }
                (needle, element) if needle.ty() != element.ty() => {
                    return Err(type_error(
                        element_at,
                        format!(
                            "cannot look for {} in a list holding {}",
                            needle.ty().with_article(),
                            element.ty().with_article()
                        ),
                    ));
                }
                _ => {
                    return Err(type_error(
                        element_at,
                        "the list after `in` must hold values written out, not computed ones"
                            .to_owned(),
                    ));
                }
            }
        }
        Ok(Typed::Bool(match needle {
            Typed::Num(Num::Const(v)) => Bool::Const(numbers.contains(&v)),
            Typed::Num(n) => Bool::NumIn(Box::new(n), numbers.into()),
            Typed::Str(Str::Const(s)) => Bool::Const(strings.contains(&s)),
            Typed::Str(Str::Field(field)) => Bool::FieldIn(field, strings.into()),
            Typed::Str(s) => Bool::StrIn(Box::new(s), strings.into()),
            Typed::Bool(_) => {
                return Err(type_error(
                    at,
                    "`in` needs a number or a string on its left, not a bool".to_owned(),
                ));
            }
        }))
    }

    /// The named functions and methods.
    fn function(
        &mut self,
        e: &IdedExpr,
        call: &CallExpr,
        depth: usize,
    ) -> Result<Typed, ExpressionError> {
        let name = call.func_name.as_str();
        let at = self.at_name(e.id, name);
        if !FUNCTIONS.contains(&name) {
            return Err(ExpressionError::UnknownFunction {
                at,
                name: name.to_owned(),
                suggestion: closest(name, FUNCTIONS.iter().copied()).map(str::to_owned),
            });
        }
        let target = match &call.target {
            Some(t) => Some(self.expr(t, depth)?),
            None => None,
        };
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            args.push(self.expr(arg, depth)?);
        }
        let count = |n: usize| -> ExpressionError {
            type_error(
                at,
                format!(
                    "{name} takes {n} argument{}, not {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
            )
        };
        match name {
            "size" => {
                let operand = match (target, args.len()) {
                    (Some(t), 0) => t,
                    (None, 1) => args.swap_remove(0),
                    _ => {
                        return Err(type_error(
                            at,
                            "size takes one string: size(s) or s.size()".to_owned(),
                        ));
                    }
                };
                match operand {
                    Typed::Str(Str::Const(s)) => {
                        Ok(Typed::Num(Num::Const(s.chars().count() as f64)))
                    }
                    Typed::Str(s) => Ok(Typed::Num(Num::Size(Box::new(s)))),
                    other => Err(type_error(
                        at,
                        format!("size needs a string, not {}", other.ty().with_article()),
                    )),
                }
            }
            "startsWith" | "endsWith" | "contains" => {
                let Some(target) = target else {
                    return Err(type_error(
                        at,
                        format!("{name} is a method: write s.{name}(x)"),
                    ));
                };
                if args.len() != 1 {
                    return Err(count(1));
                }
                let test = match name {
                    "startsWith" => StrTest::StartsWith,
                    "endsWith" => StrTest::EndsWith,
                    _ => StrTest::Contains,
                };
                match (target, args.swap_remove(0)) {
                    (Typed::Str(a), Typed::Str(b)) => {
                        Ok(Typed::Bool(Bool::StrTest(test, Box::new(a), Box::new(b))))
                    }
                    (a, b) => Err(type_error(
                        at,
                        format!("{name} needs strings, not {} and {}", a.ty(), b.ty()),
                    )),
                }
            }
            "lowerAscii" => {
                let Some(target) = target else {
                    return Err(type_error(
                        at,
                        "lowerAscii is a method: write s.lowerAscii()".to_owned(),
                    ));
                };
                if !args.is_empty() {
                    return Err(count(0));
                }
                match target {
                    Typed::Str(Str::Const(s)) => {
                        Ok(Typed::Str(Str::Const(s.to_ascii_lowercase().into())))
                    }
                    Typed::Str(s) => Ok(Typed::Str(Str::Lower(Box::new(s)))),
                    other => Err(type_error(
                        at,
                        format!(
                            "lowerAscii needs a string, not {}",
                            other.ty().with_article()
                        ),
                    )),
                }
            }
            "double" | "int" => {
                if target.is_some() {
                    return Err(type_error(
                        at,
                        format!("{name} is a function: write {name}(x)"),
                    ));
                }
                if args.len() != 1 {
                    return Err(count(1));
                }
                match args.swap_remove(0) {
                    Typed::Num(n) if name == "double" => Ok(Typed::Num(n)),
                    Typed::Num(Num::Const(v)) => Ok(Typed::Num(Num::Const(v.trunc()))),
                    Typed::Num(n) => Ok(Typed::Num(Num::Trunc(Box::new(n)))),
                    other => Err(type_error(
                        at,
                        format!(
                            "{name} takes a number here, not {}",
                            other.ty().with_article()
                        ),
                    )),
                }
            }
            // "max" | "min"
            _ => {
                if target.is_some() {
                    return Err(type_error(
                        at,
                        format!("{name} is a function: write {name}(a, b)"),
                    ));
                }
                if args.len() < 2 {
                    return Err(type_error(at, format!("{name} takes two or more numbers")));
                }
                let op = if name == "max" {
                    Arith::Max
                } else {
                    Arith::Min
                };
                let mut numbers = Vec::with_capacity(args.len());
                for arg in args {
                    match arg {
                        Typed::Num(n) => numbers.push(n),
                        other => {
                            return Err(type_error(
                                at,
                                format!("{name} takes numbers, not {}", other.ty().with_article()),
                            ));
                        }
                    }
                }
                let mut numbers = numbers.into_iter();
                let first = numbers.next().unwrap_or(Num::Const(f64::NAN));
                Ok(Typed::Num(numbers.fold(first, |acc, n| arith(op, acc, n))))
            }
        }
    }
}

fn branches_differ(at: Position, yes: &Typed, no: &Typed) -> ExpressionError {
    type_error(
        at,
        format!(
            "the two branches of `? :` must have one type, not {} and {}",
            yes.ty(),
            no.ty()
        ),
    )
}

/// `a && b`, folded when one side is constant (`x && false` is false even
/// if `x` fails, as CEL says).
fn and_of(a: Bool, b: Bool) -> Bool {
    match (a, b) {
        (Bool::Const(false), _) | (_, Bool::Const(false)) => Bool::Const(false),
        (Bool::Const(true), x) | (x, Bool::Const(true)) => x,
        (a, b) => Bool::And(Box::new(a), Box::new(b)),
    }
}

fn or_of(a: Bool, b: Bool) -> Bool {
    match (a, b) {
        (Bool::Const(true), _) | (_, Bool::Const(true)) => Bool::Const(true),
        (Bool::Const(false), x) | (x, Bool::Const(false)) => x,
        (a, b) => Bool::Or(Box::new(a), Box::new(b)),
    }
}

fn arith(op: Arith, a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Const(a), Num::Const(b)) => Num::Const(op.apply(a, b)),
        (a, b) => Num::Arith(op, Box::new(a), Box::new(b)),
    }
}

fn compare_numbers(op: Cmp, a: Num, b: Num) -> Bool {
    // The mirror image, for `10 < f.x`.
    let flipped = match op {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        other => other,
    };
    match (a, b) {
        (Num::Const(a), Num::Const(b)) => Bool::Const(op.holds(&a, &b)),
        (Num::Feature(f), Num::Const(c)) => Bool::FeatureCmp(op, f, c),
        (Num::Const(c), Num::Feature(f)) => Bool::FeatureCmp(flipped, f, c),
        (a, b) => Bool::Num(op, Box::new(a), Box::new(b)),
    }
}

/// Refuses comparing a field with a value it never has: an enum's unknown
/// spelling, a country or currency code in the wrong case, a category with
/// capitals (they are stored lower case). Such a rule could never fire.
fn check_value(at: Position, field: TxStr, value: &str) -> Result<(), ExpressionError> {
    let one_of = |allowed: &[&str]| {
        (!allowed.contains(&value)).then(|| format!("it is one of {}", allowed.join(", ")))
    };
    let hint = match field {
        TxStr::TransactionType => one_of(TransactionType::ALLOWED),
        TxStr::PaymentMethod => one_of(PaymentMethod::ALLOWED),
        TxStr::DeviceType => one_of(DeviceType::ALLOWED),
        TxStr::Country => match CountryCode::parse(value) {
            Ok(code) if code.as_str() == value => None,
            Ok(code) => Some(format!(
                "countries are upper-case ISO 3166 codes: write '{code}'"
            )),
            Err(_) => Some("countries are ISO 3166 alpha-2 codes such as 'NG'".to_owned()),
        },
        TxStr::Currency => match Currency::parse(value) {
            Ok(code) if code.code() == value => None,
            Ok(code) => Some(format!(
                "currencies are upper-case ISO 4217 codes: write '{code}'"
            )),
            Err(_) => Some("currencies are ISO 4217 codes such as 'USD'".to_owned()),
        },
        TxStr::Category => {
            let stored = value.trim().to_lowercase();
            (stored != value).then(|| {
                format!("categories are stored trimmed and in lower case: write '{stored}'")
            })
        }
        TxStr::CustomerId | TxStr::MerchantId | TxStr::City => None,
    };
    match hint {
        None => Ok(()),
        Some(hint) => Err(ExpressionError::NeverMatches {
            at,
            field: format!("tx.{}", field.name()),
            value: value.to_owned(),
            hint,
        }),
    }
}

fn feature(name: &str) -> Option<F> {
    CATALOGUE.iter().find(|f| f.name == name).map(|f| f.id)
}

fn tx_field(name: &str) -> Option<Var> {
    TX_FIELDS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn feature_suggestion(name: &str) -> Option<String> {
    closest(name, CATALOGUE.iter().map(|f| f.name))
        .map(|c| format!("f.{c}"))
        .or_else(|| tx_field(name).map(|_| format!("tx.{name}")))
}

fn field_suggestion(name: &str) -> Option<String> {
    TX_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, s)| (*s).to_owned())
        .or_else(|| closest(name, TX_FIELDS.iter().map(|(n, _)| *n)).map(|c| format!("tx.{c}")))
        .or_else(|| feature(name).map(|_| format!("f.{name}")))
}
