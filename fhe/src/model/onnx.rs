//! ONNX import (and a minimal export, used to round-trip Rust-trained models).
//!
//! The protobuf schema is the subset of `onnx.proto` (IR v3+) that dense networks use, declared
//! with prost; unknown fields are skipped by prost, so newer files decode fine. Supported ops on
//! the path from the graph input: `Scaler` (ai.onnx.ml), `Gemm`, `MatMul` + `Add`, `Relu`,
//! `Sigmoid`, `Softmax`, `LinearClassifier` (ai.onnx.ml, what skl2onnx emits for logistic
//! regression), `Cast`, `Identity`. Post-processing after the probabilities (ArgMax, ZipMap,
//! Concat…) is ignored: the client computes labels itself.

use std::collections::HashMap;

use prost::Message;

use super::{Activation, Dense, FloatModel, ModelKind, Normaliser, OutputTransform};
use crate::error::{FheError, Result};

/// Largest ONNX file we decode.
pub const MAX_ONNX_BYTES: usize = 64 << 20;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;
const MAX_TENSOR_ELEMS: usize = 1 << 24;

struct Tensor {
    dims: Vec<usize>,
    data: Vec<f64>,
}

fn err(msg: impl Into<String>) -> FheError {
    FheError::Onnx(msg.into())
}

fn tensor(t: &TensorProto) -> Result<Tensor> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("{}: negative dim", t.name))))
        .collect::<Result<_>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c <= MAX_TENSOR_ELEMS)
        .ok_or_else(|| err(format!("{}: tensor too large", t.name)))?;
    let data: Vec<f64> = match t.data_type {
        FLOAT if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
        DOUBLE if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        DOUBLE => t.double_data.clone(),
        other => return Err(err(format!("{}: unsupported data type {other}", t.name))),
    };
    if data.len() != count {
        return Err(err(format!(
            "{}: {} values for shape {:?}",
            t.name,
            data.len(),
            dims
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(err(format!("{}: non-finite value", t.name)));
    }
    Ok(Tensor { dims, data })
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Matrix stored row-major with `dims = [rows, cols]` (a 1-D tensor is one row).
fn matrix(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let (r, c) = match t.dims.as_slice() {
        [c] => (1, *c),
        [r, c] => (*r, *c),
        d => return Err(err(format!("expected a matrix, got shape {d:?}"))),
    };
    if r == 0 || c == 0 {
        return Err(err("empty matrix"));
    }
    Ok(t.data.chunks(c).map(<[f64]>::to_vec).collect())
}

fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let cols = m.first().map_or(0, Vec::len);
    (0..cols)
        .map(|j| m.iter().map(|r| r[j]).collect())
        .collect()
}

/// Parse an ONNX model into a float model. If the graph has no `Scaler`, the normaliser is the
/// identity: set `model.normaliser` from the train data (as torch models expect standardised
/// inputs) before quantising.
pub fn import_onnx(bytes: &[u8]) -> Result<FloatModel> {
    if bytes.len() > MAX_ONNX_BYTES {
        return Err(err(format!("{} bytes is too large", bytes.len())));
    }
    let model = ModelProto::decode(bytes).map_err(|e| err(format!("protobuf: {e}")))?;
    let graph = model.graph.ok_or_else(|| err("no graph"))?;
    let mut inits: HashMap<&str, Tensor> = HashMap::new();
    for t in &graph.initializer {
        // Integer/string constants belong to post-processing nodes (labels, shapes) we skip.
        if t.data_type == FLOAT || t.data_type == DOUBLE {
            inits.insert(t.name.as_str(), tensor(t)?);
        }
    }
    let input = graph
        .input
        .iter()
        .find(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .ok_or_else(|| err("no graph input"))?;
    let feature_count = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .and_then(|s| s.dim.last())
        .and_then(|d| d.dim_value)
        .and_then(|d| usize::try_from(d).ok());

    let mut normaliser: Option<Normaliser> = None;
    let mut layers: Vec<Dense> = vec![];
    // A MatMul waiting for its Add.
    let mut pending_bias = false;
    let mut output = OutputTransform::Identity;
    let mut current = input.name.clone();
    let mut finished = false;
    for _ in 0..graph.node.len() {
        if finished {
            break;
        }
        let consumers: Vec<&NodeProto> = graph
            .node
            .iter()
            .filter(|n| n.input.contains(&current))
            .collect();
        let Some(node) = consumers.iter().find(|n| {
            matches!(
                n.op_type.as_str(),
                "Scaler"
                    | "Gemm"
                    | "MatMul"
                    | "Add"
                    | "Relu"
                    | "Sigmoid"
                    | "Softmax"
                    | "LinearClassifier"
                    | "Cast"
                    | "Identity"
            )
        }) else {
            break;
        };
        let other_input = |n: &NodeProto| -> Result<&Tensor> {
            n.input
                .iter()
                .filter(|i| **i != current)
                .find_map(|i| inits.get(i.as_str()))
                .ok_or_else(|| err(format!("{}: needs a constant operand", n.op_type)))
        };
        if pending_bias && node.op_type != "Add" {
            return Err(err("MatMul not followed by a bias Add"));
        }
        if output != OutputTransform::Identity {
            return Err(err(format!("{} after the output transform", node.op_type)));
        }
        match node.op_type.as_str() {
            "Scaler" => {
                if !layers.is_empty() || normaliser.is_some() {
                    return Err(err("Scaler must come first"));
                }
                let offset = attr(node, "offset")
                    .map(|a| a.floats.clone())
                    .unwrap_or_default();
                let scale = attr(node, "scale")
                    .map(|a| a.floats.clone())
                    .unwrap_or_default();
                if offset.is_empty() || scale.len() != offset.len() {
                    return Err(err("Scaler: offset/scale mismatch"));
                }
                if scale.iter().any(|s| *s == 0.0 || !s.is_finite()) {
                    return Err(err("Scaler: zero scale"));
                }
                normaliser = Some(Normaliser {
                    mean: offset.iter().map(|&v| v as f64).collect(),
                    std: scale.iter().map(|&s| 1.0 / s as f64).collect(),
                });
            }
            "Gemm" => {
                if attr(node, "transA").is_some_and(|a| a.i != 0) {
                    return Err(err("Gemm with transA is not supported"));
                }
                let alpha = attr(node, "alpha").map_or(1.0, |a| a.f as f64);
                let beta = attr(node, "beta").map_or(1.0, |a| a.f as f64);
                let b = inits
                    .get(node.input.get(1).map_or("", String::as_str))
                    .ok_or_else(|| err("Gemm: B must be an initializer"))?;
                let mut w = matrix(b)?;
                if attr(node, "transB").is_none_or(|a| a.i == 0) {
                    w = transpose(&w);
                }
                for r in &mut w {
                    for v in r.iter_mut() {
                        *v *= alpha;
                    }
                }
                let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
                    Some(c) => {
                        let t = inits
                            .get(c.as_str())
                            .ok_or_else(|| err("Gemm: C must be an initializer"))?;
                        broadcast(&t.data, w.len())?
                            .into_iter()
                            .map(|v| v * beta)
                            .collect()
                    }
                    None => vec![0.0; w.len()],
                };
                layers.push(Dense {
                    weights: w,
                    bias,
                    activation: Activation::Identity,
                });
            }
            "MatMul" => {
                if node.input.first() != Some(&current) {
                    return Err(err("MatMul: the data must be the left operand"));
                }
                let w = transpose(&matrix(other_input(node)?)?);
                let outs = w.len();
                layers.push(Dense {
                    weights: w,
                    bias: vec![0.0; outs],
                    activation: Activation::Identity,
                });
                pending_bias = true;
            }
            "Add" => {
                let t = other_input(node)?;
                let last = layers
                    .last_mut()
                    .filter(|l| l.activation == Activation::Identity)
                    .ok_or_else(|| err("Add without a preceding linear layer"))?;
                let b = broadcast(&t.data, last.outputs())?;
                for (x, y) in last.bias.iter_mut().zip(b) {
                    *x += y;
                }
                pending_bias = false;
            }
            "Relu" | "Sigmoid" => {
                let last = layers
                    .last_mut()
                    .ok_or_else(|| err("activation before any layer"))?;
                if last.activation != Activation::Identity {
                    return Err(err("two activations in a row"));
                }
                last.activation = if node.op_type == "Relu" {
                    Activation::Relu
                } else {
                    Activation::Sigmoid
                };
            }
            "Softmax" => {
                if layers.is_empty() {
                    return Err(err("Softmax before any layer"));
                }
                output = OutputTransform::Softmax;
            }
            "LinearClassifier" => {
                let coef = attr(node, "coefficients")
                    .map(|a| a.floats.clone())
                    .unwrap_or_default();
                let icpt = attr(node, "intercepts")
                    .map(|a| a.floats.clone())
                    .unwrap_or_default();
                let post = attr(node, "post_transform")
                    .map(|a| a.s.clone())
                    .unwrap_or_default();
                let classes = icpt.len();
                if classes == 0 || coef.is_empty() || !coef.len().is_multiple_of(classes) {
                    return Err(err("LinearClassifier: bad coefficients"));
                }
                let f = coef.len() / classes;
                let rows: Vec<Vec<f64>> = coef
                    .chunks(f)
                    .map(|r| r.iter().map(|&v| v as f64).collect())
                    .collect();
                let b: Vec<f64> = icpt.iter().map(|&v| v as f64).collect();
                // skl2onnx writes a binary model as two rows (−w, w); class 1's row is the logit.
                let (weights, bias, out) = match (classes, post.as_slice()) {
                    (2, b"LOGISTIC") => {
                        (vec![rows[1].clone()], vec![b[1]], OutputTransform::Sigmoid)
                    }
                    (1, b"LOGISTIC") => (rows, b, OutputTransform::Sigmoid),
                    (_, b"SOFTMAX") => (rows, b, OutputTransform::Softmax),
                    (_, b"NONE") | (_, b"") => (rows, b, OutputTransform::Identity),
                    _ => return Err(err("LinearClassifier: unsupported post_transform")),
                };
                layers.push(Dense {
                    weights,
                    bias,
                    activation: Activation::Identity,
                });
                output = out;
                finished = true;
            }
            _ => {} // Cast / Identity: pass through.
        }
        current = node
            .output
            .first()
            .cloned()
            .ok_or_else(|| err(format!("{} has no output", node.op_type)))?;
    }
    if pending_bias {
        return Err(err("MatMul not followed by a bias Add"));
    }
    // A final Sigmoid on a single logit is the output transform, not a hidden activation.
    if let Some(last) = layers.last_mut() {
        if last.activation == Activation::Sigmoid && output == OutputTransform::Identity {
            last.activation = Activation::Identity;
            output = OutputTransform::Sigmoid;
        }
    }
    let f = layers
        .first()
        .map(Dense::inputs)
        .ok_or_else(|| err("no dense layer found"))?;
    if feature_count.is_some_and(|n| n != f) {
        return Err(err("graph input width disagrees with the first layer"));
    }
    let normaliser = normaliser.unwrap_or_else(|| Normaliser::identity(f));
    let kind = if layers.len() == 1 {
        ModelKind::LogisticRegression
    } else {
        ModelKind::Mlp
    };
    let m = FloatModel {
        kind,
        normaliser,
        clip_norm: None,
        layers,
        output,
        train_rows: 0,
        l2_lambda: 0.0,
    };
    m.validate().map_err(|e| err(e.to_string()))?;
    Ok(m)
}

fn broadcast(v: &[f64], n: usize) -> Result<Vec<f64>> {
    match v.len() {
        1 => Ok(vec![v[0]; n]),
        l if l == n => Ok(v.to_vec()),
        l => Err(err(format!("bias of length {l} for {n} outputs"))),
    }
}

/// Export a float model as ONNX in torch.onnx's layout (Scaler, then Gemm with transB = 1 per
/// layer, activations, and a final Sigmoid/Softmax). Float32 weights, like every exporter.
pub fn export_onnx(m: &FloatModel) -> Result<Vec<u8>> {
    m.validate()?;
    if m.clip_norm.is_some() {
        return Err(err("clipped models have no ONNX equivalent"));
    }
    let f32s = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
    let mut nodes = vec![NodeProto {
        input: vec!["input".into()],
        output: vec!["scaled".into()],
        name: "scaler".into(),
        op_type: "Scaler".into(),
        domain: "ai.onnx.ml".into(),
        attribute: vec![
            AttributeProto {
                name: "offset".into(),
                floats: f32s(&m.normaliser.mean),
                r#type: 6,
                ..Default::default()
            },
            AttributeProto {
                name: "scale".into(),
                floats: m.normaliser.std.iter().map(|s| (1.0 / s) as f32).collect(),
                r#type: 6,
                ..Default::default()
            },
        ],
    }];
    let mut inits = vec![];
    let mut cur = "scaled".to_string();
    for (k, l) in m.layers.iter().enumerate() {
        let out = format!("fc{k}_out");
        inits.push(TensorProto {
            dims: vec![l.outputs() as i64, l.inputs() as i64],
            data_type: FLOAT,
            float_data: f32s(&l.weights.concat()),
            name: format!("fc{k}.weight"),
            ..Default::default()
        });
        inits.push(TensorProto {
            dims: vec![l.outputs() as i64],
            data_type: FLOAT,
            float_data: f32s(&l.bias),
            name: format!("fc{k}.bias"),
            ..Default::default()
        });
        nodes.push(NodeProto {
            input: vec![cur.clone(), format!("fc{k}.weight"), format!("fc{k}.bias")],
            output: vec![out.clone()],
            name: format!("fc{k}"),
            op_type: "Gemm".into(),
            attribute: vec![AttributeProto {
                name: "transB".into(),
                i: 1,
                r#type: 2,
                ..Default::default()
            }],
            ..Default::default()
        });
        cur = out;
        let act = match l.activation {
            Activation::Identity => None,
            Activation::Relu => Some("Relu"),
            Activation::Sigmoid => Some("Sigmoid"),
        };
        if let Some(op) = act {
            let out = format!("act{k}_out");
            nodes.push(NodeProto {
                input: vec![cur.clone()],
                output: vec![out.clone()],
                name: format!("act{k}"),
                op_type: op.into(),
                ..Default::default()
            });
            cur = out;
        }
    }
    let final_op = match m.output {
        OutputTransform::Sigmoid => Some("Sigmoid"),
        OutputTransform::Softmax => Some("Softmax"),
        OutputTransform::Identity => None,
    };
    if let Some(op) = final_op {
        nodes.push(NodeProto {
            input: vec![cur.clone()],
            output: vec!["probabilities".into()],
            name: "output".into(),
            op_type: op.into(),
            ..Default::default()
        });
        cur = "probabilities".into();
    }
    let vi = |name: &str, width: usize| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        Dimension {
                            dim_value: None,
                            dim_param: Some("batch".into()),
                        },
                        Dimension {
                            dim_value: Some(width as i64),
                            dim_param: None,
                        },
                    ],
                }),
            }),
        }),
    };
    let out_width = m.layers.last().map_or(0, Dense::outputs);
    let model = ModelProto {
        ir_version: 8,
        producer_name: "smidl-fhe".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "smidl".into(),
            initializer: inits,
            input: vec![vi("input", m.feature_count())],
            output: vec![vi(&cur, out_width)],
        }),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: 1,
            },
        ],
    };
    Ok(model.encode_to_vec())
}
