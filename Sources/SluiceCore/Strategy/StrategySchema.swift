/// The JSON Schema (2020-12) of the strategy format, for editors' YAML extensions (`sluice schema`).
///
/// It states the structure, types, names, patterns and ranges; rules across fields (weights that
/// increase, holds of at least one interval, provider references, routers that fit the target,
/// template tokens) are checked by `StrategyLoader` only, and `sluice validate` is the authority.
public enum StrategySchema {
    /// The schema as pretty-printed JSON.
    public static let json = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "https://sluice.dev/schemas/strategy-v1.json",
          "title": "Sluice strategy (sluice.dev/v1)",
          "description": "A progressive-delivery strategy: what is rolled out, how traffic is split, the stages and the checks that must hold. See docs/strategy.md.",
          "type": "object",
          "additionalProperties": false,
          "required": ["apiVersion", "kind", "metadata", "spec"],
          "properties": {
            "apiVersion": {"const": "sluice.dev/v1"},
            "kind": {"const": "Strategy"},
            "metadata": {
              "type": "object",
              "additionalProperties": false,
              "required": ["name"],
              "properties": {
                "name": {"$ref": "#/$defs/label", "description": "DNS-1123 label, unique per namespace."},
                "namespace": {"$ref": "#/$defs/label", "default": "default"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
              }
            },
            "spec": {
              "type": "object",
              "additionalProperties": false,
              "required": ["target", "traffic", "stages"],
              "properties": {
                "target": {"$ref": "#/$defs/target"},
                "traffic": {"$ref": "#/$defs/traffic"},
                "stages": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/stage"}},
                "analysis": {"$ref": "#/$defs/analysis"},
                "rollback": {
                  "type": "object",
                  "additionalProperties": false,
                  "properties": {
                    "automatic": {"type": "boolean", "default": true, "description": "false turns a breach into a pause for a human."}
                  }
                },
                "notifications": {"type": "array", "items": {"$ref": "#/$defs/notification"}},
                "bake": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["duration"],
                  "description": "After promotion the new version serves all traffic while the last stage's threshold checks keep running; a breach undoes the promotion traffic first: the pools swap back, or a Deployment gets back its previous pod template.",
                  "properties": {
                    "duration": {"$ref": "#/$defs/duration", "description": "How long to watch; at least one analysis interval."}
                  }
                }
              }
            }
          },
          "$defs": {
            "label": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "subdomain": {
              "type": "string", "maxLength": 253,
              "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
            },
            "duration": {
              "type": "string",
              "pattern": "^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$",
              "description": "Go-style duration: 90s, 30m, 1h30m, 500ms."
            },
            "httpURL": {"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://[^\\s/?#]+([/?#]\\S*)?$"},
            "hostPort": {"type": "string", "pattern": "^([A-Za-z0-9._-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$"},
            "headers": {
              "type": "object",
              "description": "Header name to its value: a string, or read when the provider is built from an environment variable or a file.",
              "additionalProperties": {
                "oneOf": [
                  {"type": "string"},
                  {
                    "type": "object", "additionalProperties": false, "required": ["fromEnv"],
                    "properties": {"fromEnv": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}
                  },
                  {
                    "type": "object", "additionalProperties": false, "required": ["fromFile"],
                    "properties": {"fromFile": {"type": "string", "minLength": 1}}
                  }
                ]
              }
            },
            "target": {
              "description": "Exactly one of deployment or upstreams.",
              "oneOf": [
                {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["deployment"],
                  "properties": {
                    "deployment": {"$ref": "#/$defs/label", "maxLength": 56, "description": "The stable Deployment; Sluice owns <deployment>-canary."},
                    "container": {"$ref": "#/$defs/label", "description": "The container whose image a rollout changes (default: the first)."}
                  }
                },
                {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["upstreams"],
                  "properties": {
                    "upstreams": {
                      "type": "object",
                      "additionalProperties": false,
                      "required": ["stable", "canary"],
                      "properties": {
                        "stable": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"$ref": "#/$defs/hostPort"}},
                        "canary": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"$ref": "#/$defs/hostPort"}},
                        "health": {
                          "description": "Probe of every member of the pool in the canary role, before traffic shifts and while it serves.",
                          "type": "object",
                          "additionalProperties": false,
                          "required": ["path"],
                          "properties": {
                            "path": {"type": "string", "pattern": "^/[^\\s]*$", "description": "e.g. /healthz"},
                            "scheme": {"enum": ["http", "https"], "default": "http"},
                            "expect": {"type": "integer", "minimum": 100, "maximum": 599, "default": 200, "description": "The status every member must answer."},
                            "timeout": {"$ref": "#/$defs/duration", "default": "2s", "description": "One probe of one member; at most 10s."},
                            "failureThreshold": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3, "description": "Failing observations in a row, while the canary serves, that fail the rollout."},
                            "version": {
                              "description": "Where a member names its version; it must equal the rollout's version.",
                              "type": "object",
                              "additionalProperties": false,
                              "minProperties": 1,
                              "maxProperties": 1,
                              "properties": {
                                "header": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
                                "jsonPath": {"type": "string", "pattern": "^[^.]+(\\.[^.]+)*$"}
                              }
                            }
                          }
                        }
                      }
                    }
                  }
                }
              ]
            },
            "traffic": {
              "description": "Exactly one router.",
              "type": "object",
              "additionalProperties": false,
              "minProperties": 1,
              "maxProperties": 1,
              "properties": {
                "gatewayAPI": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["httpRoute", "stableService", "canaryService"],
                  "properties": {
                    "httpRoute": {"$ref": "#/$defs/subdomain"},
                    "stableService": {"$ref": "#/$defs/label"},
                    "canaryService": {"$ref": "#/$defs/label"}
                  }
                },
                "nginxIngress": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["ingress", "canaryService"],
                  "properties": {
                    "ingress": {"$ref": "#/$defs/subdomain", "maxLength": 246},
                    "canaryService": {"$ref": "#/$defs/label"}
                  }
                },
                "caddy": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["adminURL", "handlerID"],
                  "properties": {
                    "adminURL": {"$ref": "#/$defs/httpURL"},
                    "handlerID": {"type": "string", "pattern": "^\\S+$"}
                  }
                },
                "awsALB": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["region", "listenerARN", "stableTargetGroupARN", "canaryTargetGroupARN"],
                  "properties": {
                    "region": {"type": "string", "pattern": "^[a-z]+(-[a-z]+)+-[0-9]+$"},
                    "listenerARN": {"type": "string", "pattern": "^arn:[^:]+:elasticloadbalancing:[^:]+:[^:]+:listener/.+$"},
                    "stableTargetGroupARN": {"type": "string", "pattern": "^arn:[^:]+:elasticloadbalancing:[^:]+:[^:]+:targetgroup/.+$"},
                    "canaryTargetGroupARN": {"type": "string", "pattern": "^arn:[^:]+:elasticloadbalancing:[^:]+:[^:]+:targetgroup/.+$"},
                    "endpoint": {"$ref": "#/$defs/httpURL", "description": "Overrides the regional ELBv2 endpoint."}
                  }
                }
              }
            },
            "stage": {
              "type": "object",
              "additionalProperties": false,
              "required": ["weight"],
              "properties": {
                "name": {"$ref": "#/$defs/label", "description": "Optional; default stage-N, N counted from 1."},
                "weight": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Canary weight in percent; strictly increasing, the last stage 100."},
                "hold": {"$ref": "#/$defs/duration", "description": "How long the stage must stay healthy; at least one analysis interval."},
                "pause": {"type": "boolean", "description": "true: wait for `sluice promote` instead of a hold."},
                "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}}
              },
              "not": {"required": ["hold", "pause"], "properties": {"pause": {"const": true}}}
            },
            "analysis": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "interval": {"$ref": "#/$defs/duration", "default": "10s"},
                "failureLimit": {"type": "integer", "minimum": 1, "default": 1},
                "noDataLimit": {"type": "integer", "minimum": 1, "default": 6},
                "onNoData": {"enum": ["pause", "rollback"], "default": "pause"},
                "providers": {
                  "type": "object",
                  "propertyNames": {"$ref": "#/$defs/label"},
                  "additionalProperties": {"$ref": "#/$defs/provider"}
                },
                "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}}
              }
            },
            "provider": {
              "type": "object",
              "additionalProperties": false,
              "minProperties": 1,
              "maxProperties": 1,
              "properties": {
                "prometheus": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["address"],
                  "properties": {
                    "address": {"$ref": "#/$defs/httpURL"},
                    "timeout": {"$ref": "#/$defs/duration", "default": "5s"},
                    "headers": {"$ref": "#/$defs/headers"},
                    "bearerTokenFile": {"type": "string", "minLength": 1}
                  }
                },
                "web": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["url", "jsonPath"],
                  "properties": {
                    "url": {"$ref": "#/$defs/httpURL"},
                    "jsonPath": {"type": "string", "pattern": "^[^.]+(\\.[^.]+)*$"},
                    "headers": {"$ref": "#/$defs/headers"},
                    "timeout": {"$ref": "#/$defs/duration", "default": "5s"}
                  }
                }
              }
            },
            "check": {
              "type": "object",
              "additionalProperties": false,
              "required": ["name"],
              "oneOf": [
                {"required": ["query"], "anyOf": [{"required": ["max"]}, {"required": ["min"]}], "not": {"required": ["compare"]}},
                {"required": ["compare"], "not": {"anyOf": [{"required": ["query"]}, {"required": ["max"]}, {"required": ["min"]}, {"required": ["minCount"]}]}}
              ],
              "properties": {
                "name": {"$ref": "#/$defs/label"},
                "provider": {"type": "string", "description": "A key of analysis.providers; optional when exactly one is declared."},
                "query": {"type": "string", "minLength": 1, "description": "May use {{name}}, {{namespace}}, {{stable}}, {{canary}}, {{version}}, {{interval}}."},
                "max": {"type": "number", "description": "A value above max is a breach."},
                "min": {"type": "number", "description": "A value below min is a breach."},
                "minCount": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["query", "min"],
                  "description": "A window whose count (e.g. of requests) is below min is no-data, neither a pass nor a breach.",
                  "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "min": {"type": "number", "minimum": 0}
                  }
                },
                "compare": {"$ref": "#/$defs/comparison"}
              }
            },
            "comparison": {
              "type": "object",
              "additionalProperties": false,
              "required": ["kind", "canary", "baseline"],
              "description": "An anytime-valid sequential comparison of the canary with the stable baseline; see docs/judge.md.",
              "properties": {
                "kind": {"enum": ["rate", "latency", "quality"]},
                "canary": {"$ref": "#/$defs/comparisonSide"},
                "baseline": {"$ref": "#/$defs/comparisonSide"},
                "maxIncrease": {"description": "rate: the allowed relative increase (20% or 0.2); latency: the allowed shift (50ms).", "oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": "^[0-9.]+ *%$"}, {"$ref": "#/$defs/duration"}]},
                "maxDecrease": {"description": "quality only (higher is better): the allowed relative drop (5% or 0.05), below 100%.", "oneOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, {"type": "string", "pattern": "^[0-9.]+ *%$"}]},
                "slowerThan": {"$ref": "#/$defs/duration", "description": "latency only: the baseline's bucket bound ({{le}}); the canary's is slowerThan + maxIncrease."},
                "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": 0.01},
                "minRequests": {"type": "integer", "minimum": 1, "default": 100, "description": "Canary requests a stage must see before the check can pass."}
              },
              "allOf": [
                {"if": {"properties": {"kind": {"const": "latency"}}},
                 "then": {"required": ["slowerThan", "maxIncrease"], "not": {"required": ["maxDecrease"]}, "properties": {"canary": {"required": ["slower"]}, "baseline": {"required": ["slower"]}}}},
                {"if": {"properties": {"kind": {"const": "rate"}}},
                 "then": {"required": ["maxIncrease"], "not": {"anyOf": [{"required": ["slowerThan"]}, {"required": ["maxDecrease"]}]}, "properties": {"canary": {"required": ["errors"]}, "baseline": {"required": ["errors"]}}}},
                {"if": {"properties": {"kind": {"const": "quality"}}},
                 "then": {"required": ["maxDecrease"], "not": {"anyOf": [{"required": ["slowerThan"]}, {"required": ["maxIncrease"]}]}, "properties": {"canary": {"required": ["good"]}, "baseline": {"required": ["good"]}}}}
              ]
            },
            "comparisonSide": {
              "type": "object",
              "additionalProperties": false,
              "required": ["requests"],
              "properties": {
                "errors": {"type": "string", "minLength": 1, "description": "rate: errors in the interval, e.g. sum(increase(...[{{interval}}]))."},
                "slower": {"type": "string", "minLength": 1, "description": "latency: requests slower than {{le}} in the interval."},
                "good": {"type": "string", "minLength": 1, "description": "quality: good answers (e.g. correct predictions) in the interval."},
                "requests": {"type": "string", "minLength": 1, "description": "Requests in the interval."}
              },
              "oneOf": [{"required": ["errors"]}, {"required": ["slower"]}, {"required": ["good"]}]
            },
            "notification": {
              "type": "object",
              "additionalProperties": false,
              "required": ["webhook"],
              "properties": {
                "webhook": {"$ref": "#/$defs/httpURL"},
                "on": {"type": "array", "items": {"enum": [EVENT_TYPES]}, "description": "Event types to send; empty or absent means every event."}
              }
            }
          }
        }

        """#.replacingEventTypes()
}

extension String {
    /// The schema lists the event types `NotificationTarget.eventTypes` knows, so the two never drift.
    fileprivate func replacingEventTypes() -> String {
        let list = NotificationTarget.eventTypes.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: "EVENT_TYPES") {
            result += rest[..<range.lowerBound] + list
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
