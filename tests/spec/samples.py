"""Manifests shared by the spec and CLI tests."""

# Every field of the v1 manifest, as ARCHITECTURE.md sketches it.
VALID = """\
apiVersion: runner/v1
kind: Job
metadata: {name: mnist, labels: {team: vision}}
spec:
  image: {base: tensorflow/tensorflow:2.21.0-gpu, requirements: requirements.txt, context: .}
  command: [python, train.py, --epochs, "5"]
  env: {TF_CPP_MIN_LOG_LEVEL: "1"}
  resources: {gpu: 1, gpuType: H100, cpu: 4, memory: 16Gi}
  inputs: [{name: data, source: s3://bucket/malaria/, path: /data}]
  outputs: {path: /outputs}
  retries: 2
  timeout: 2h
  schedule: {cron: "0 2 * * *", timeZone: Asia/Seoul, concurrency: Forbid}
  kubernetes: {namespace: ml, queue: team-a, priorityClass: batch-low}
"""
