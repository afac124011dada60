//! The Open Inference Protocol v2 REST tensor formats (KServe / Triton): JSON tensors and the
//! binary tensor data extension. Pure functions: bytes in, tensors out, and back.

use serde_json::{Map, Value, json};

/// A request input after parsing: its name, shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct InputTensor {
    /// The input's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: TensorData,
}

/// Values of a supported input datatype.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `FP32`.
    F32(Vec<f32>),
    /// `UINT8`.
    U8(Vec<u8>),
    /// `BYTES`: one byte string per element (encoded image files, documents or SMILES).
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    /// Little-endian bytes (what the input hash in the audit log is taken over).
    pub fn le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::Bytes(v) => v
                .iter()
                .flat_map(|b| {
                    (b.len() as u32)
                        .to_le_bytes()
                        .into_iter()
                        .chain(b.iter().copied())
                })
                .collect(),
        }
    }
}

/// A parsed inference request.
#[derive(Clone, Debug, PartialEq)]
pub struct InferRequest {
    /// The request id, echoed back.
    pub id: Option<String>,
    /// The inputs.
    pub inputs: Vec<InputTensor>,
    /// The requested outputs (empty: all) with whether each wants binary data.
    pub outputs: Vec<(String, bool)>,
    /// `binary_data_output` for the whole request.
    pub binary_output: bool,
}

/// Split a request body into its JSON header and the binary section.
/// `header_len` is the `Inference-Header-Content-Length` value, when present.
pub fn split_body<'a>(
    body: &'a [u8],
    header_len: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), String> {
    match header_len {
        None => Ok((body, &[])),
        Some(s) => {
            let n: usize = s.trim().parse().map_err(|_| {
                format!("Inference-Header-Content-Length {s:?} is not a byte count")
            })?;
            if n > body.len() {
                return Err(format!(
                    "Inference-Header-Content-Length {n} exceeds the body ({} bytes)",
                    body.len()
                ));
            }
            Ok(body.split_at(n))
        }
    }
}

fn flatten_numbers(v: &Value, out: &mut Vec<f64>, limit: usize) -> Result<(), String> {
    match v {
        Value::Array(a) => {
            for x in a {
                flatten_numbers(x, out, limit)?;
            }
            Ok(())
        }
        Value::Number(n) => {
            if out.len() >= limit {
                return Err(format!("more than the {limit} values the shape allows"));
            }
            out.push(n.as_f64().ok_or("a number out of range")?);
            Ok(())
        }
        other => Err(format!(
            "expected numbers, found {}",
            match other {
                Value::String(_) => "a string",
                Value::Bool(_) => "a boolean",
                Value::Null => "null",
                _ => "an object",
            }
        )),
    }
}

/// How `BYTES` elements written as JSON strings are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonBytes {
    /// Each string is the base64 of the element (binary files, e.g. encoded images).
    Base64,
    /// Each string is the element itself, as UTF-8 (documents, SMILES): what `tritonclient`
    /// sends for a string array in JSON mode.
    Utf8,
}

/// Parse an infer request: JSON header plus the binary section (may be empty).
/// `max_elements` caps the element count any input may declare; `json_bytes` says how `BYTES`
/// elements in the JSON `data` are read.
pub fn parse_request(
    header: &[u8],
    binary: &[u8],
    max_elements: usize,
    json_bytes: JsonBytes,
) -> Result<InferRequest, String> {
    let v: Value =
        serde_json::from_slice(header).map_err(|e| format!("request body is not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("request body must be a JSON object with \"inputs\"")?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("\"id\" must be a string".into()),
    };
    let params = obj.get("parameters").and_then(Value::as_object);
    let binary_output = params
        .and_then(|p| p.get("binary_data_output"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let inputs_v = obj
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or("\"inputs\" must be an array of tensors")?;
    let mut offset = 0usize;
    let mut inputs = Vec::new();
    for (i, t) in inputs_v.iter().enumerate() {
        let t = t
            .as_object()
            .ok_or_else(|| format!("inputs[{i}] must be an object"))?;
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("inputs[{i}]: \"name\" (string) is required"))?
            .to_string();
        let at = format!("input {name:?}");
        let shape: Vec<usize> = t
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}: \"shape\" (array of sizes) is required"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{at}: \"shape\" must hold non-negative integers"))?;
        let count = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= max_elements)
            .ok_or_else(|| {
                format!("{at}: shape {shape:?} has more than {max_elements} elements")
            })?;
        let datatype = t
            .get("datatype")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: \"datatype\" is required"))?;
        let elem = match datatype {
            "FP32" => 4,
            "UINT8" => 1,
            "BYTES" => 0,
            other => {
                return Err(format!(
                    "{at}: datatype {other} is not supported (expected FP32, UINT8 or BYTES)"
                ));
            }
        };
        let bin_size = t
            .get("parameters")
            .and_then(Value::as_object)
            .and_then(|p| p.get("binary_data_size"));
        let data = if let Some(size) = bin_size {
            let size = size
                .as_u64()
                .ok_or_else(|| format!("{at}: binary_data_size must be a byte count"))?
                as usize;
            if elem > 0 && size != count * elem {
                return Err(format!(
                    "{at}: binary_data_size {size} does not match shape {shape:?} of {datatype} ({} bytes)",
                    count * elem
                ));
            }
            let end = offset
                .checked_add(size)
                .filter(|&e| e <= binary.len())
                .ok_or_else(|| {
                    format!(
                        "{at}: the binary section has {} bytes, {size} needed from offset {offset}",
                        binary.len()
                    )
                })?;
            let bytes = &binary[offset..end];
            offset = end;
            match elem {
                0 => TensorData::Bytes(
                    split_bytes_elements(bytes, count).map_err(|e| format!("{at}: {e}"))?,
                ),
                4 => TensorData::F32(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                _ => TensorData::U8(bytes.to_vec()),
            }
        } else {
            let d = t
                .get("data")
                .ok_or_else(|| format!("{at}: \"data\" (or binary_data_size) is required"))?;
            if elem == 0 {
                let files = json_bytes_elements(d, count, json_bytes)
                    .map_err(|e| format!("{at}: data: {e}"))?;
                inputs.push(InputTensor {
                    name,
                    shape,
                    data: TensorData::Bytes(files),
                });
                continue;
            }
            let mut flat = Vec::with_capacity(count.min(1 << 20));
            flatten_numbers(d, &mut flat, count).map_err(|e| format!("{at}: data: {e}"))?;
            if flat.len() != count {
                return Err(format!(
                    "{at}: data has {} values, shape {shape:?} needs {count}",
                    flat.len()
                ));
            }
            if elem == 4 {
                if flat.iter().any(|x| !x.is_finite()) {
                    return Err(format!("{at}: data holds a non-finite value"));
                }
                TensorData::F32(flat.into_iter().map(|x| x as f32).collect())
            } else {
                if flat
                    .iter()
                    .any(|&x| x.fract() != 0.0 || !(0.0..=255.0).contains(&x))
                {
                    return Err(format!("{at}: UINT8 data must be integers 0..=255"));
                }
                TensorData::U8(flat.into_iter().map(|x| x as u8).collect())
            }
        };
        if let TensorData::F32(v) = &data
            && v.iter().any(|x| !x.is_finite())
        {
            return Err(format!("{at}: data holds a non-finite value"));
        }
        inputs.push(InputTensor { name, shape, data });
    }
    if offset != binary.len() {
        return Err(format!(
            "the binary section has {} bytes but the inputs use {offset}",
            binary.len()
        ));
    }
    let mut outputs = Vec::new();
    if let Some(outs) = obj.get("outputs") {
        let outs = outs
            .as_array()
            .ok_or("\"outputs\" must be an array of {\"name\": …}")?;
        for (i, o) in outs.iter().enumerate() {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("outputs[{i}]: \"name\" is required"))?;
            let bin = o
                .get("parameters")
                .and_then(|p| p.get("binary_data"))
                .and_then(Value::as_bool)
                .unwrap_or(binary_output);
            outputs.push((name.to_string(), bin));
        }
    }
    Ok(InferRequest {
        id,
        inputs,
        outputs,
        binary_output,
    })
}

/// `BYTES` elements in the binary extension: each a 4-byte little-endian length, then the bytes.
fn split_bytes_elements(mut b: &[u8], count: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(count.min(1024));
    while !b.is_empty() {
        if b.len() < 4 {
            return Err("a BYTES element is cut off in its length prefix".into());
        }
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let rest = &b[4..];
        if n > rest.len() {
            return Err(format!(
                "a BYTES element declares {n} bytes, {} remain",
                rest.len()
            ));
        }
        out.push(rest[..n].to_vec());
        b = &rest[n..];
    }
    if out.len() != count {
        return Err(format!(
            "{} BYTES elements, the shape needs {count}",
            out.len()
        ));
    }
    Ok(out)
}

/// `BYTES` elements in JSON, flat or nested: strings holding the base64 of each element (binary
/// files cannot travel as JSON text) or the UTF-8 element itself.
fn json_bytes_elements(d: &Value, count: usize, how: JsonBytes) -> Result<Vec<Vec<u8>>, String> {
    fn walk(v: &Value, out: &mut Vec<Vec<u8>>, count: usize, how: JsonBytes) -> Result<(), String> {
        match v {
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, out, count, how)),
            Value::String(s) => {
                if out.len() >= count {
                    return Err(format!("more than the {count} elements the shape allows"));
                }
                let b = match how {
                    JsonBytes::Utf8 => s.as_bytes().to_vec(),
                    JsonBytes::Base64 => {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .decode(s.trim())
                            .map_err(|e| format!("element {} is not base64: {e}", out.len()))?
                    }
                };
                out.push(b);
                Ok(())
            }
            _ => Err(match how {
                JsonBytes::Base64 => "BYTES data must be base64 strings".into(),
                JsonBytes::Utf8 => "BYTES data must be strings".into(),
            }),
        }
    }
    let mut out = Vec::new();
    walk(d, &mut out, count, how)?;
    if out.len() != count {
        return Err(format!("{} elements, the shape needs {count}", out.len()));
    }
    Ok(out)
}

/// An output tensor of a response.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputData {
    /// `FP32` values.
    F32(Vec<f32>),
    /// `BYTES` strings.
    Bytes(Vec<String>),
}

/// Encode a response: the JSON header and the binary section (empty when no output is binary).
pub fn encode_response(
    model: &str,
    id: Option<&str>,
    outputs: &[(String, Vec<usize>, OutputData, bool)],
) -> (Vec<u8>, Vec<u8>) {
    let mut binary = Vec::new();
    let mut outs = Vec::new();
    for (name, shape, data, bin) in outputs {
        let datatype = match data {
            OutputData::F32(_) => "FP32",
            OutputData::Bytes(_) => "BYTES",
        };
        let mut o = Map::new();
        o.insert("name".into(), json!(name));
        o.insert("datatype".into(), json!(datatype));
        o.insert("shape".into(), json!(shape));
        if *bin {
            let start = binary.len();
            match data {
                OutputData::F32(v) => {
                    for x in v {
                        binary.extend_from_slice(&x.to_le_bytes());
                    }
                }
                OutputData::Bytes(v) => {
                    for s in v {
                        binary.extend_from_slice(&(s.len() as u32).to_le_bytes());
                        binary.extend_from_slice(s.as_bytes());
                    }
                }
            }
            o.insert(
                "parameters".into(),
                json!({"binary_data_size": binary.len() - start}),
            );
        } else {
            o.insert(
                "data".into(),
                match data {
                    OutputData::F32(v) => json!(v),
                    OutputData::Bytes(v) => json!(v),
                },
            );
        }
        outs.push(Value::Object(o));
    }
    let mut resp = json!({"model_name": model, "model_version": "1", "outputs": outs});
    if let Some(id) = id {
        resp["id"] = json!(id);
    }
    (serde_json::to_vec(&resp).expect("JSON"), binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_binary_requests_parse_to_the_same_tensor() {
        let j = br#"{"id":"r1","inputs":[{"name":"image","shape":[1,2,2],"datatype":"FP32","data":[[0.5,1],[2,-3]]}],"outputs":[{"name":"probabilities"}]}"#;
        let a = parse_request(j, &[], 1000, JsonBytes::Base64).unwrap();
        assert_eq!(a.id.as_deref(), Some("r1"));
        assert_eq!(a.inputs[0].shape, vec![1, 2, 2]);
        assert_eq!(a.inputs[0].data, TensorData::F32(vec![0.5, 1.0, 2.0, -3.0]));
        assert_eq!(a.outputs, vec![("probabilities".to_string(), false)]);

        let h = br#"{"inputs":[{"name":"image","shape":[1,2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true},"outputs":[{"name":"label"}]}"#;
        let bin: Vec<u8> = [0.5f32, 1.0, 2.0, -3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut body = h.to_vec();
        body.extend(&bin);
        let len = h.len().to_string();
        let (hd, bd) = split_body(&body, Some(&len)).unwrap();
        let b = parse_request(hd, bd, 1000, JsonBytes::Base64).unwrap();
        assert_eq!(b.inputs, a.inputs);
        assert!(b.binary_output);
        assert_eq!(b.outputs, vec![("label".to_string(), true)]);
    }

    #[test]
    fn bytes_inputs_in_json_and_binary() {
        let j = br#"{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":["aGk=","AAEC"]}]}"#;
        let a = parse_request(j, &[], 10, JsonBytes::Base64).unwrap();
        assert_eq!(
            a.inputs[0].data,
            TensorData::Bytes(vec![b"hi".to_vec(), vec![0, 1, 2]])
        );
        let h = br#"{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":13}}]}"#;
        let bin = [
            &2u32.to_le_bytes()[..],
            b"hi",
            &3u32.to_le_bytes(),
            &[0, 1, 2],
        ]
        .concat();
        let b = parse_request(h, &bin, 10, JsonBytes::Base64).unwrap();
        assert_eq!(b.inputs, a.inputs);
        assert_eq!(a.inputs[0].data.le_bytes(), bin);
        let e = parse_request(h, &bin[..12], 10, JsonBytes::Base64).unwrap_err();
        assert!(e.contains("binary section has 12"), "{e}");
        let h1 = br#"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":13}}]}"#;
        let e = parse_request(h1, &bin, 10, JsonBytes::Base64).unwrap_err();
        assert!(e.contains("2 BYTES elements, the shape needs 1"), "{e}");
        let bad = br#"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["%%%"]}]}"#;
        assert!(
            parse_request(bad, &[], 10, JsonBytes::Base64)
                .unwrap_err()
                .contains("not base64")
        );
        // Strings as themselves (documents, SMILES), as tritonclient sends them in JSON mode;
        // the same elements in the binary extension parse to the same tensor.
        let t = r#"{"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","data":[["chest pain é"],["CCO"]]}]}"#;
        let u = parse_request(t.as_bytes(), &[], 10, JsonBytes::Utf8).unwrap();
        assert_eq!(
            u.inputs[0].data,
            TensorData::Bytes(vec!["chest pain é".as_bytes().to_vec(), b"CCO".to_vec()])
        );
        let hb = br#"{"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","parameters":{"binary_data_size":24}}]}"#;
        let bin = [
            &13u32.to_le_bytes()[..],
            "chest pain é".as_bytes(),
            &3u32.to_le_bytes(),
            b"CCO",
        ]
        .concat();
        assert_eq!(
            parse_request(hb, &bin, 10, JsonBytes::Utf8).unwrap().inputs,
            u.inputs
        );
        let n = br#"{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[7]}]}"#;
        assert!(
            parse_request(n, &[], 10, JsonBytes::Utf8)
                .unwrap_err()
                .contains("must be strings")
        );
    }

    #[test]
    fn malformed_requests_are_explained() {
        let cases: &[(&[u8], &[u8], &str)] = &[
            (b"{", b"", "not JSON"),
            (b"[]", b"", "JSON object"),
            (br#"{"inputs":{}}"#, b"", "array of tensors"),
            (br#"{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}"#, b"", "\"name\""),
            (br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}"#, b"", "needs 2"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}"#, b"", "INT64 is not supported"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}"#, b"", "a string"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}]}"#, b"", "0..=255"),
            (br#"{"inputs":[{"name":"x","shape":[100000,100000],"datatype":"FP32","data":[]}]}"#, b"", "more than"),
            (br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#, b"1234", "binary section has 4"),
            (br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}"#, b"1234", "does not match shape"),
            (br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#, b"extra", "inputs use 0"),
            (br#"{"inputs":[{"name":"x","shape":[1,-1],"datatype":"FP32","data":[1]}]}"#, b"", "non-negative"),
        ];
        for (h, b, want) in cases {
            let e = parse_request(h, b, 1 << 24, JsonBytes::Base64).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(h));
        }
        assert!(
            split_body(b"{}", Some("9"))
                .unwrap_err()
                .contains("exceeds")
        );
        assert!(
            split_body(b"{}", Some("x"))
                .unwrap_err()
                .contains("byte count")
        );
    }

    #[test]
    fn responses_encode_json_and_binary_outputs() {
        let outs = vec![
            (
                "probabilities".to_string(),
                vec![1, 2],
                OutputData::F32(vec![0.25, 0.75]),
                true,
            ),
            (
                "label".to_string(),
                vec![1],
                OutputData::Bytes(vec!["yes".into()]),
                false,
            ),
        ];
        let (h, b) = encode_response("m", Some("7"), &outs);
        let v: Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(v["id"], "7");
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["outputs"][1]["data"][0], "yes");
        assert_eq!(b, [0.25f32.to_le_bytes(), 0.75f32.to_le_bytes()].concat());
        let (_, b2) = encode_response(
            "m",
            None,
            &[(
                "label".into(),
                vec![1],
                OutputData::Bytes(vec!["ab".into()]),
                true,
            )],
        );
        assert_eq!(b2, vec![2, 0, 0, 0, b'a', b'b']);
    }
}
