// The OpenAPI 3 document served at /v1/openapi.json. Keep identical to docs/openapi.json
// (tests/test_cli_serve.cpp compares them); regenerate this file from it when the API changes.
#include "service/daemon.hpp"

namespace omicsd {
const char* const kOpenApiJson = R"OPENAPI({
  "openapi": "3.0.3",
  "info": {
    "title": "omicsd HTTP API",
    "version": "1",
    "description": "GPU-accelerated genomics service: runs (scope client), the Batch worker task protocol (scope worker) and operations. See docs/api.md. Errors: {\"error\": {\"code\", \"message\"}}. Times are unix milliseconds."
  },
  "servers": [
    {
      "url": "http://127.0.0.1:8080"
    }
  ],
  "security": [
    {
      "bearer": []
    }
  ],
  "paths": {
    "/v1/runs": {
      "post": {
        "operationId": "createRun",
        "summary": "Submit a run",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "schema": {
              "type": "string",
              "maxLength": 256
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RunRequest"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Created",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "200": {
            "description": "Existing run for a repeated Idempotency-Key",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "get": {
        "operationId": "listRuns",
        "summary": "List runs",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "state",
            "in": "query",
            "schema": {
              "$ref": "#/components/schemas/State"
            }
          },
          {
            "name": "workflow",
            "in": "query",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "page_size",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000,
              "default": 50
            }
          },
          {
            "name": "page_token",
            "in": "query",
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "A page of runs",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "runs": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Run"
                      }
                    },
                    "next_page_token": {
                      "type": "string",
                      "nullable": true
                    }
                  }
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/runs/{id}": {
      "get": {
        "operationId": "getRun",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/runs/{id}/cancel": {
      "post": {
        "operationId": "cancelRun",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/runs/{id}/resume": {
      "post": {
        "operationId": "resumeRun",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The run",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/runs/{id}/logs": {
      "get": {
        "operationId": "getRunLogs",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Per-task logs",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "tasks": {
                      "type": "array",
                      "items": {
                        "$ref": "#/components/schemas/Task"
                      }
                    }
                  }
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/runs/{id}/outputs/{name}": {
      "get": {
        "operationId": "getRunOutput",
        "tags": [
          "runs"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "name",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "enum": [
                "bam",
                "bai",
                "vcf",
                "tbi",
                "qc"
              ]
            }
          },
          {
            "name": "Range",
            "in": "header",
            "required": false,
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The file",
            "content": {
              "application/octet-stream": {
                "schema": {
                  "type": "string",
                  "format": "binary"
                }
              }
            }
          },
          "206": {
            "description": "Partial content",
            "content": {
              "application/octet-stream": {
                "schema": {
                  "type": "string",
                  "format": "binary"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "416": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/tasks/lease": {
      "post": {
        "operationId": "leaseTask",
        "tags": [
          "tasks"
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/LeaseRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "A leased task and its run",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "task": {
                      "$ref": "#/components/schemas/LeasedTask"
                    },
                    "run": {
                      "type": "object"
                    }
                  }
                }
              }
            }
          },
          "204": {
            "description": "No task available"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/tasks/{id}/heartbeat": {
      "post": {
        "operationId": "heartbeatTask",
        "tags": [
          "tasks"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "Task id `<run id>/<name>`, percent-encoded (`%2F`)",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "lease_token"
                ],
                "properties": {
                  "lease_token": {
                    "type": "string"
                  },
                  "lease_seconds": {
                    "type": "integer"
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The task",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Task"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/tasks/{id}/complete": {
      "post": {
        "operationId": "completeTask",
        "tags": [
          "tasks"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "Task id `<run id>/<name>`, percent-encoded (`%2F`)",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "lease_token",
                  "outputs"
                ],
                "properties": {
                  "lease_token": {
                    "type": "string"
                  },
                  "outputs": {
                    "type": "object",
                    "additionalProperties": {
                      "$ref": "#/components/schemas/ObjectRef"
                    }
                  },
                  "provenance": {
                    "type": "object"
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The task (idempotent)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Task"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/tasks/{id}/fail": {
      "post": {
        "operationId": "failTask",
        "tags": [
          "tasks"
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "Task id `<run id>/<name>`, percent-encoded (`%2F`)",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "lease_token"
                ],
                "properties": {
                  "lease_token": {
                    "type": "string"
                  },
                  "error": {
                    "type": "string"
                  },
                  "retryable": {
                    "type": "boolean",
                    "default": true
                  }
                }
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "The task (idempotent)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Task"
                }
              }
            }
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "operationId": "healthz",
        "tags": [
          "operations"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "ok",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/readyz": {
      "get": {
        "operationId": "readyz",
        "tags": [
          "operations"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "ready"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "tags": [
          "operations"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "Prometheus text exposition format",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/v1/openapi.json": {
      "get": {
        "operationId": "openapi",
        "tags": [
          "operations"
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "This document",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Tokens with scopes client, worker, admin from --token-file"
      }
    },
    "responses": {
      "Error": {
        "description": "Error",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "integer"
              },
              "message": {
                "type": "string"
              }
            }
          }
        }
      },
      "State": {
        "type": "string",
        "enum": [
          "QUEUED",
          "RUNNING",
          "COMPLETE",
          "FAILED",
          "CANCELED"
        ]
      },
      "ObjectRef": {
        "type": "object",
        "required": [
          "digest",
          "size"
        ],
        "properties": {
          "digest": {
            "type": "string",
            "pattern": "^sha256:[0-9a-f]{64}$"
          },
          "size": {
            "type": "integer"
          }
        }
      },
      "RunRequest": {
        "type": "object",
        "required": [
          "workflow",
          "inputs"
        ],
        "properties": {
          "workflow": {
            "type": "string",
            "enum": [
              "germline",
              "align",
              "call"
            ]
          },
          "sample": {
            "type": "string",
            "pattern": "^[A-Za-z0-9._-]*$"
          },
          "inputs": {
            "type": "object",
            "description": "germline, align: {reference, reads}; call: {reference, bam}. URIs: file:///abs/path, an absolute path under --allow-root, or sha256:<hex>.",
            "properties": {
              "reference": {
                "type": "string"
              },
              "reads": {
                "oneOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "array",
                    "items": {
                      "type": "string"
                    },
                    "minItems": 1,
                    "maxItems": 2
                  }
                ]
              },
              "bam": {
                "type": "string"
              }
            }
          },
          "parameters": {
            "type": "object",
            "properties": {
              "threads": {
                "type": "integer",
                "minimum": 0
              },
              "backend": {
                "type": "string",
                "enum": [
                  "auto",
                  "cpu",
                  "cuda"
                ]
              },
              "gvcf": {
                "type": "boolean"
              },
              "read_group": {
                "type": "string"
              },
              "interleaved": {
                "type": "boolean"
              },
              "min_score": {
                "type": "integer"
              },
              "min_mapq": {
                "type": "integer"
              },
              "min_baseq": {
                "type": "integer"
              },
              "min_qual": {
                "type": "number"
              },
              "regions": {
                "type": "string"
              },
              "targets": {
                "type": "string"
              }
            }
          },
          "callback_url": {
            "type": "string"
          },
          "cache": {
            "type": "boolean",
            "default": true
          }
        }
      },
      "Task": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "kind": {
            "type": "string",
            "enum": [
              "align",
              "call",
              "qc"
            ]
          },
          "state": {
            "$ref": "#/components/schemas/State"
          },
          "attempts": {
            "type": "integer"
          },
          "max_attempts": {
            "type": "integer"
          },
          "last_error": {
            "type": "string"
          },
          "worker_id": {
            "type": "string"
          },
          "queued_at": {
            "type": "integer"
          },
          "started_at": {
            "type": "integer",
            "nullable": true
          },
          "finished_at": {
            "type": "integer",
            "nullable": true
          },
          "cache_hit": {
            "type": "boolean"
          }
        }
      },
      "LeasedTask": {
        "allOf": [
          {
            "$ref": "#/components/schemas/Task"
          },
          {
            "type": "object",
            "properties": {
              "lease_token": {
                "type": "string"
              },
              "lease_expires_at": {
                "type": "integer"
              },
              "parameters": {
                "type": "object"
              },
              "inputs": {
                "type": "object"
              },
              "sample": {
                "type": "string"
              },
              "use_cache": {
                "type": "boolean"
              }
            }
          }
        ]
      },
      "LeaseRequest": {
        "type": "object",
        "required": [
          "worker_id"
        ],
        "properties": {
          "worker_id": {
            "type": "string"
          },
          "capabilities": {
            "type": "object",
            "example": {
              "gpu": "H100",
              "gpu_memory_gb": 80
            }
          },
          "lease_seconds": {
            "type": "integer",
            "minimum": 1,
            "default": 60
          }
        }
      },
      "Run": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "workflow": {
            "type": "string"
          },
          "sample": {
            "type": "string"
          },
          "state": {
            "$ref": "#/components/schemas/State"
          },
          "created_at": {
            "type": "integer"
          },
          "updated_at": {
            "type": "integer"
          },
          "failure_reason": {
            "type": "string"
          },
          "inputs": {
            "type": "object"
          },
          "parameters": {
            "type": "object"
          },
          "tasks": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Task"
            }
          },
          "outputs": {
            "type": "object",
            "additionalProperties": {
              "$ref": "#/components/schemas/ObjectRef"
            }
          },
          "provenance": {
            "type": "object"
          }
        }
      }
    }
  }
}
)OPENAPI";
}  // namespace omicsd
