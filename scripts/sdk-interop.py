#!/usr/bin/env python3
"""Interop checks against Alibaba Cloud's official Python SDK (aliyun-python-sdk-core).

  sdk-interop.py vectors OUT.json N   write N random signing vectors computed by the SDK's own
                                      composer and HMAC code; the Rust unit test
                                      `sign::tests::official_sdk_vectors` checks ours against them
  sdk-interop.py client ENDPOINT      drive the simulator with the SDK's real client, so the
                                      simulator's signature check is shown to agree with the SDK
"""
import json
import random
import sys

from aliyunsdkcore.auth.algorithm import sha_hmac1
from aliyunsdkcore.auth.composer import rpc_signature_composer as composer

ALPHABET = "abcXYZ019-_.~ *+/=&@:%?#[]!$'()\"<>\\^`{|}中文é\t"


def rand_text(rng):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def vectors(out, n):
    rng = random.Random(20241123)
    compose = getattr(composer, "__compose_string_to_sign")
    result = []
    for _ in range(n):
        params = {
            "AccessKeyId": "testid",
            "Action": rng.choice(["AddDomainRecord", "UpdateDomainRecord", "DescribeDomainRecords"]),
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": "%032x" % rng.getrandbits(128),
            "SignatureVersion": "1.0",
            "Timestamp": "2024-01-02T03:04:05Z",
            "Version": "2015-01-09",
        }
        for _ in range(rng.randint(0, 5)):
            params[rng.choice(["RR", "Value", "Type", "KeyWord", "Line", "SecurityToken", "zeta", "Alpha"])] = rand_text(rng)
        method = rng.choice(["GET", "POST"])
        secret = rand_text(rng) or "s"
        sts = compose(method, params)
        sig = sha_hmac1.get_sign_string(sts, secret + "&")
        result.append({"method": method, "params": params, "secret": secret,
                       "string_to_sign": sts, "signature": sig})
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)
    print(f"wrote {len(result)} vectors to {out}")


def client(endpoint):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkalidns.request.v20150109 import (AddDomainRecordRequest, DeleteDomainRecordRequest,
                                                   DescribeDomainRecordsRequest, UpdateDomainRecordRequest)
    host = endpoint.split("//", 1)[1].rstrip("/")

    def req(r):
        r.set_endpoint(host)
        r.set_protocol_type("http")
        r.set_accept_format("json")
        return r

    c = AcsClient("testid", "testsecret", "cn-hangzhou")
    add = req(AddDomainRecordRequest.AddDomainRecordRequest())
    add.set_DomainName("example.com"); add.set_RR("sdk"); add.set_Type("TXT"); add.set_Value("a b*c~d/e+f=g")
    rid = json.loads(c.do_action_with_exception(add))["RecordId"]
    lst = req(DescribeDomainRecordsRequest.DescribeDomainRecordsRequest())
    lst.set_DomainName("example.com")
    recs = json.loads(c.do_action_with_exception(lst))["DomainRecords"]["Record"]
    assert any(r["RecordId"] == rid and r["Value"] == "a b*c~d/e+f=g" for r in recs), recs
    upd = req(UpdateDomainRecordRequest.UpdateDomainRecordRequest())
    upd.set_RecordId(rid); upd.set_RR("sdk"); upd.set_Type("TXT"); upd.set_Value("中文 value")
    c.do_action_with_exception(upd)
    dele = req(DeleteDomainRecordRequest.DeleteDomainRecordRequest())
    dele.set_RecordId(rid)
    c.do_action_with_exception(dele)
    bad = AcsClient("testid", "wrong-secret", "cn-hangzhou")
    try:
        bad.do_action_with_exception(req(DescribeDomainRecordsRequest.DescribeDomainRecordsRequest()))
        raise SystemExit("a wrong secret was accepted")
    except ServerException as e:
        # The SDK reports InvalidAccessKeySecret only when the server's string-to-sign equals its own.
        assert e.get_error_code() in ("InvalidAccessKeySecret", "SignatureDoesNotMatch"), e
        print("wrong secret rejected:", e.get_error_code())
    print("official SDK client: add/list/update/delete accepted by the simulator")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "vectors":
        vectors(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "client":
        client(sys.argv[2])
    else:
        sys.exit(__doc__)
