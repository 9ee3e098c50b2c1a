//! The part of OTLP's `MetricsData` (opentelemetry-proto,
//! `opentelemetry/proto/metrics/v1/metrics.proto`) that KIP-714 clients push:
//! resource attributes, and per metric its gauge, sum or histogram points.
//! Fields not declared here (exemplars, exponential histograms, summaries,
//! array values) are skipped by the decoder as unknown fields.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct MetricsData {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeMetrics {
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    #[prost(oneof = "Data", tags = "5, 7, 9")]
    pub data: Option<Data>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Data {
    #[prost(message, tag = "5")]
    Gauge(Gauge),
    #[prost(message, tag = "7")]
    Sum(Sum),
    #[prost(message, tag = "9")]
    Histogram(Histogram),
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    /// 1 delta, 2 cumulative.
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(oneof = "NumberValue", tags = "4, 6")]
    pub value: Option<NumberValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum NumberValue {
    #[prost(double, tag = "4")]
    AsDouble(f64),
    #[prost(sfixed64, tag = "6")]
    AsInt(i64),
}

#[derive(Clone, PartialEq, Message)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
    pub value: Option<Value>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
}

impl KeyValue {
    /// The value as text; `None` for the kinds not decoded (arrays, maps, bytes).
    pub fn text(&self) -> Option<String> {
        match self.value.as_ref()?.value.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Double(d) => Some(d.to_string()),
        }
    }
}

/// How a point's value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    Gauge,
    /// A delta (temporality 1) or cumulative sum.
    Sum {
        monotonic: bool,
        delta: bool,
    },
    /// A histogram's count or sum, under `<name>.count` / `<name>.sum`.
    Histogram,
}

/// One decoded data point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    /// The point's attributes as `key=value`, sorted, joined by commas.
    pub attributes: String,
    pub value: f64,
    pub kind: PointKind,
    pub time_unix_nano: u64,
}

/// A decoded push: the resource attributes and the points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub resource: Vec<(String, String)>,
    pub points: Vec<Point>,
}

fn attributes_text(attributes: &[KeyValue]) -> String {
    let mut pairs: Vec<String> =
        attributes.iter().filter_map(|kv| kv.text().map(|v| format!("{}={v}", kv.key))).collect();
    pairs.sort();
    pairs.join(",")
}

/// Decodes an uncompressed `MetricsData`; at most `points_max` points are
/// kept (the rest are counted in the returned number of points dropped).
pub fn decode(bytes: &[u8], points_max: usize) -> Result<(Decoded, usize), prost::DecodeError> {
    let data = MetricsData::decode(bytes)?;
    let mut out = Decoded::default();
    let mut dropped = 0usize;
    let mut push = |out: &mut Decoded, point: Point| {
        if out.points.len() < points_max {
            out.points.push(point);
        } else {
            dropped += 1;
        }
    };
    for rm in data.resource_metrics {
        if let Some(resource) = rm.resource {
            for kv in &resource.attributes {
                if let Some(v) = kv.text() {
                    out.resource.push((kv.key.clone(), v));
                }
            }
        }
        for metric in rm.scope_metrics.into_iter().flat_map(|s| s.metrics) {
            let number_points = |points: Vec<NumberDataPoint>, kind: PointKind| {
                points
                    .into_iter()
                    .filter_map(|p| {
                        let value = match p.value? {
                            NumberValue::AsDouble(d) => d,
                            NumberValue::AsInt(i) => i as f64,
                        };
                        let attributes = attributes_text(&p.attributes);
                        Some(Point {
                            name: metric.name.clone(),
                            attributes,
                            value,
                            kind,
                            time_unix_nano: p.time_unix_nano,
                        })
                    })
                    .collect::<Vec<_>>()
            };
            let points = match metric.data.clone() {
                Some(Data::Gauge(g)) => number_points(g.data_points, PointKind::Gauge),
                Some(Data::Sum(s)) => {
                    let kind = PointKind::Sum { monotonic: s.is_monotonic, delta: s.aggregation_temporality == 1 };
                    number_points(s.data_points, kind)
                }
                Some(Data::Histogram(h)) => h
                    .data_points
                    .into_iter()
                    .flat_map(|p| {
                        let attributes = attributes_text(&p.attributes);
                        let point = |suffix: &str, value: f64| Point {
                            name: format!("{}.{suffix}", metric.name),
                            attributes: attributes.clone(),
                            value,
                            kind: PointKind::Histogram,
                            time_unix_nano: p.time_unix_nano,
                        };
                        let mut v = vec![point("count", p.count as f64)];
                        v.extend(p.sum.map(|s| point("sum", s)));
                        v
                    })
                    .collect(),
                None => Vec::new(),
            };
            for p in points {
                push(&mut out, p);
            }
        }
    }
    Ok((out, dropped))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(Value::String(value.into())) }) }
    }

    /// A `MetricsData` as a Java producer sends it: one gauge and one delta sum.
    pub(crate) fn sample(client_id: &str) -> Vec<u8> {
        let gauge = Metric {
            name: "org.apache.kafka.producer.record.queue.time.max".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: vec![],
                    time_unix_nano: 1,
                    value: Some(NumberValue::AsDouble(12.5)),
                }],
            })),
            ..Default::default()
        };
        let sum = Metric {
            name: "org.apache.kafka.producer.node.request.latency.count".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("node_id", "1")],
                    time_unix_nano: 1,
                    value: Some(NumberValue::AsInt(7)),
                }],
                aggregation_temporality: 1,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        MetricsData {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("client_id", client_id)] }),
                scope_metrics: vec![ScopeMetrics { metrics: vec![gauge, sum] }],
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_points_and_resource() {
        let (decoded, dropped) = decode(&sample("p1"), 10).unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(decoded.resource, [("client_id".to_string(), "p1".to_string())]);
        assert_eq!(decoded.points.len(), 2);
        assert_eq!(decoded.points[0].value, 12.5);
        assert_eq!(decoded.points[1].attributes, "node_id=1");
        assert_eq!(decoded.points[1].kind, PointKind::Sum { monotonic: true, delta: true });
        let (decoded, dropped) = decode(&sample("p1"), 1).unwrap();
        assert_eq!((decoded.points.len(), dropped), (1, 1));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xff, 0xff, 0xff, 0xff], 10).is_err());
        assert!(decode(&[0x0a, 0x50, 0x01], 10).is_err(), "a length past the end");
    }
}
