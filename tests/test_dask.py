"""qwen_nb.batch inside Dask: a LocalCluster of 2 worker processes on 127.0.0.1 against the
local server, the key reaching workers through their environment (never the task graph),
results gathered into one DataFrame, and a cluster-wide cap on requests in flight."""

from __future__ import annotations

import pickle
import threading
import time

import pytest
from fake_server import Reply
from support import FAKE_KEY

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

WORKERS = 2
PER_PARTITION = 2  # requests a partition's batch() runs at once
LEASES = 1  # partitions allowed to call the API at once, cluster-wide
IMAGES = 12


def test_batch_on_a_local_dask_cluster(server, tmp_path, monkeypatch):
    from dask_jobs import answer_partition
    from PIL import Image

    paths = []
    for n in range(IMAGES):
        path = tmp_path / f"img{n:02d}.png"
        Image.new("RGB", (64, 48), (n * 20, 100, 200)).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({"path": paths})

    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def reply(body):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.15)
        with lock:
            in_flight[0] -= 1
        return Reply(answer="a picture")

    server.reply_fn = reply
    # The key must reach workers only through their own environment: not inherited from
    # this process, not in the graph.
    worker_env = {"QWEN_NB_API_KEY": FAKE_KEY, "QWEN_NB_BASE_URL": server.base_url,
                  "QWEN_NB_MODEL": "qwen3-vl-32b-thinking"}
    monkeypatch.delenv("QWEN_NB_API_KEY")

    with distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  env=worker_env) as cluster, \
            distributed.Client(cluster) as client:
        distributed.Semaphore(max_leases=LEASES, name="qwen-api")
        table = dd.from_pandas(frame, npartitions=4)
        meta = frame.assign(answer="", status="", worker="")
        answered = table.map_partitions(answer_partition, "Describe", PER_PARTITION,
                                        "qwen-api", meta=meta)

        graph = dict(answered.__dask_graph__())
        assert FAKE_KEY.encode() not in pickle.dumps(graph, protocol=5)
        import cloudpickle

        assert FAKE_KEY.encode() not in cloudpickle.dumps(graph)
        result = answered.compute()
        workers = set(client.scheduler_info()["workers"])

    assert isinstance(result, pd.DataFrame)
    assert list(result["path"]) == paths  # gathered in the input's order
    assert (result["status"] == "ok").all() and (result["answer"] == "a picture").all()
    assert set(result["worker"]) <= workers  # ran on the cluster's worker processes
    assert len(server.requests) == IMAGES
    assert all(r.headers.get("Authorization") == f"Bearer {FAKE_KEY}" for r in server.requests)
    # One lease x 2 per partition: never more than 2 requests in flight across the cluster.
    assert peak[0] <= LEASES * PER_PARTITION
    assert FAKE_KEY not in result.to_json()
