#!/usr/bin/env python3
"""A real S3 API on 127.0.0.1 for TelemetryS3Tests: moto's server mode, set up from a JSON plan.

    moto_fixture.py serve --plan PLAN.json --ready READY.json [--max-seconds 600]

Starts moto on an ephemeral loopback port, then (with authentication still off) creates the plan's IAM users
(`allow_s3`: an inline policy allowing s3:*), buckets, uploaded trees and single objects, and finally switches
moto's IAM authentication on (`/moto-api/reset-auth` 0): from then on every request must carry a valid
Signature Version 4 by a known access key, and is checked against the user's policies.

READY.json (written atomically when the server is ready):
    {"endpoint": "http://127.0.0.1:PORT", "users": {"NAME": {"access_key_id": ..., "secret_access_key": ...}},
     "etags": {"BUCKET/KEY": "..."}}

The server stops on SIGTERM/SIGINT, when its parent process (the test process) is gone, or after --max-seconds,
whichever comes first.

    moto_fixture.py put --endpoint URL --key-id ID --secret S --bucket B --key K --file F

overwrites one object (used to change an object under a partial download).
"""
import argparse
import concurrent.futures
import json
import os
import signal
import sys
import threading
import time
import urllib.request


def s3_client(endpoint, key_id, secret):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def put_multipart(s3, bucket, key, data, parts):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    size = max(1, len(data) // parts)
    done = []
    for number in range(parts):
        chunk = data[number * size:] if number == parts - 1 else data[number * size:(number + 1) * size]
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number + 1, Body=chunk)["ETag"]
        done.append({"ETag": etag, "PartNumber": number + 1})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done})


def set_up(endpoint, plan):
    import boto3

    session = boto3.session.Session(aws_access_key_id="setup", aws_secret_access_key="setup", region_name="us-east-1")
    iam = session.client("iam", endpoint_url=endpoint)
    s3 = s3_client(endpoint, "setup", "setup")
    users = {}
    for name, spec in plan.get("users", {}).items():
        iam.create_user(UserName=name)
        if spec.get("allow_s3"):
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            iam.put_user_policy(UserName=name, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        users[name] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    for bucket in plan.get("buckets", []):
        s3.create_bucket(Bucket=bucket["name"])
    uploads = []
    for tree in plan.get("trees", []):
        for directory, _, files in os.walk(tree["dir"]):
            for name in files:
                path = os.path.join(directory, name)
                key = tree.get("prefix", "") + os.path.relpath(path, tree["dir"])
                uploads.append((tree["bucket"], key, path))
    etags = {}

    def upload(item):
        bucket, key, path = item
        with open(path, "rb") as handle:
            etags[bucket + "/" + key] = s3.put_object(Bucket=bucket, Key=key, Body=handle.read())["ETag"].strip('"')

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, uploads))
    for obj in plan.get("objects", []):
        with open(obj["file"], "rb") as handle:
            data = handle.read()
        if obj.get("multipart_parts"):
            put_multipart(s3, obj["bucket"], obj["key"], data, obj["multipart_parts"])
        elif obj.get("public"):
            s3.put_object(Bucket=obj["bucket"], Key=obj["key"], Body=data, ACL="public-read")
        else:
            s3.put_object(Bucket=obj["bucket"], Key=obj["key"], Body=data)
        etags[obj["bucket"] + "/" + obj["key"]] = s3.head_object(Bucket=obj["bucket"], Key=obj["key"])["ETag"].strip('"')
    if plan.get("enforce_auth", True):
        request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=30).read()
    return users, etags


def serve(args):
    # boto3 here must not pick up the machine's profile, keys or region (a CA bundle setting is harmless).
    for name in [name for name in os.environ if name.startswith("AWS_") and name != "AWS_CA_BUNDLE"]:
        del os.environ[name]
    # Multipart parts of a few bytes (S3 wants 5 MiB), so tests can make multipart ETags cheaply.
    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = "1"
    from moto.server import ThreadedMotoServer

    with open(args.plan) as handle:
        plan = json.load(handle)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        _, port = server.get_host_and_port()
        endpoint = f"http://127.0.0.1:{port}"
        users, etags = set_up(endpoint, plan)
        temporary = args.ready + ".tmp"
        with open(temporary, "w") as handle:
            json.dump({"endpoint": endpoint, "users": users, "etags": etags}, handle)
        os.replace(temporary, args.ready)
        parent = os.getppid()
        deadline = time.monotonic() + args.max_seconds
        while not stop.wait(0.2):
            if os.getppid() != parent or time.monotonic() > deadline:
                break
    finally:
        server.stop()


def put(args):
    s3 = s3_client(args.endpoint, args.key_id, args.secret)
    with open(args.file, "rb") as handle:
        s3.put_object(Bucket=args.bucket, Key=args.key, Body=handle.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--plan", required=True)
    serve_parser.add_argument("--ready", required=True)
    serve_parser.add_argument("--max-seconds", type=float, default=600)
    put_parser = commands.add_parser("put")
    for name in ("endpoint", "key-id", "secret", "bucket", "key", "file"):
        put_parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    if args.command == "put":
        put(args)
        return
    status = 0
    try:
        serve(args)
    except BaseException:
        import traceback
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # not sys.exit: do not wait for moto's server threads


if __name__ == "__main__":
    main()
