"""find-images' pure half: what counts as an image, from manifests written for each case."""

from __future__ import annotations

import json
import textwrap

import pytest

from imgmirror.findimages.documents import load_documents, split_documents
from imgmirror.findimages.extract import candidates, findings
from imgmirror.findimages.found import collect
from imgmirror.findimages.helmvalues import values_candidates
from imgmirror.findimages.judge import judge, judge_shaped


def found(text: str, origin: str = "m.yaml") -> dict[str, list[str]]:
    """``{image: [source, ...]}`` of a manifest text."""
    documents, errors = load_documents(textwrap.dedent(text), origin)
    assert not errors, errors
    images, _ = findings([c for d in documents for c in candidates(d)])
    report = collect(images, [], [], [])
    return {i.image: [str(s) for s in i.sources] for i in report.images}


def hints(text: str) -> list[str]:
    documents, _ = load_documents(textwrap.dedent(text), "m.yaml")
    return [h.text for h in findings([c for d in documents for c in candidates(d)])[1]]


POD_SPEC = """\
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: app
        image: registry.corp/app:1.0
      ephemeralContainers:
      - name: debug
        image: nicolaka/netshoot:v0.13
"""


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(textwrap.dedent(text), " " * spaces)


@pytest.mark.parametrize(
    ("kind", "api", "template"),
    [
        ("Pod", "v1", "spec:\n{spec}"),
        ("Deployment", "apps/v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("DaemonSet", "apps/v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("StatefulSet", "apps/v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("ReplicaSet", "apps/v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("ReplicationController", "v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("Job", "batch/v1", "spec:\n  template:\n    spec:\n{spec}"),
        ("CronJob", "batch/v1",
         "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{spec}"),
        ("PodTemplate", "v1", "template:\n  spec:\n{spec}"),
    ],
)  # fmt: skip
def test_every_workload_kind_gives_its_containers_init_and_ephemeral_ones(kind, api, template):
    body = template.format(spec=_indent(POD_SPEC, template.count("\n") * 2))
    text = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: w\n{body}"
    images = found(text)
    assert sorted(images) == ["busybox:1.36", "nicolaka/netshoot:v0.13", "registry.corp/app:1.0"]
    line = text.splitlines().index(next(x for x in text.splitlines() if "corp/app" in x)) + 1
    prefix = template.replace("{spec}", "").replace(":\n", ".").replace(" ", "")
    assert images["registry.corp/app:1.0"] == [
        f"m.yaml:{line} {kind}/w {prefix}containers[app].image"
    ]
    assert all(f"{kind}/w" in source for sources in images.values() for source in sources)


def test_a_direct_image_keeps_its_place_with_line_kind_name_and_path():
    images = found("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop}
        spec:
          template:
            spec:
              containers:
              - name: nginx
                image: nginx:1.25
        """)
    assert images == {
        "nginx:1.25": ["m.yaml:9 Deployment/shop/web spec.template.spec.containers[nginx].image"]
    }


def test_list_items_are_read_and_kubectl_get_json_works():
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
             "spec": {"containers": [{"name": "c", "image": "quay.io/a/b:1"}]}},
            {"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [
                {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": "ghcr.io/o/d@sha256:" + "a" * 64}]}}}}]},
        ],
    }  # fmt: skip
    images = found(json.dumps(listing, indent=2), "get.json")
    assert sorted(images) == ["ghcr.io/o/d@sha256:" + "a" * 64, "quay.io/a/b:1"]
    assert images["quay.io/a/b:1"][0].startswith("get.json:")


def test_json_with_tabs_falls_back_to_the_json_parser():
    text = (
        '{\n\t"kind": "Pod", "metadata": {"name": "p"},\n\t"spec": {"containers": '
        '[{"name": "c",\t"image": "quay.io/x/y:2"}]}\n}'
    )
    assert list(found(text)) == ["quay.io/x/y:2"]


def test_pod_templates_nested_in_custom_resources_count_as_containers():
    images = found("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata: {name: r}
        spec:
          template:
            spec:
              containers:
              - name: app
                image: quay.io/team/app:2.1
        ---
        apiVersion: operators.coreos.com/v1alpha1
        kind: ClusterServiceVersion
        metadata: {name: op.v1}
        spec:
          install:
            spec:
              deployments:
              - name: op
                spec:
                  template:
                    spec:
                      containers:
                      - name: manager
                        image: quay.io/op/manager:v1
        """)
    assert sorted(images) == ["quay.io/op/manager:v1", "quay.io/team/app:2.1"]
    assert "Rollout/r spec.template.spec.containers[app].image" in images["quay.io/team/app:2.1"][0]


OPERATOR = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: op}
    spec:
      template:
        spec:
          containers:
          - name: manager
            image: quay.io/op/manager:v1
            {extra}
"""


def operator(extra: str) -> dict[str, list[str]]:
    return found(OPERATOR.replace("{extra}", _indent(extra, 12).lstrip()))


def test_env_values_named_like_images_are_indirect_images():
    images = operator(
        """\
        env:
        - name: RELATED_IMAGE_OPERAND
          value: registry.redhat.io/ubi9/operand@sha256:"""
        + "b" * 64
        + """
        - name: CONFIG_RELOADER_IMAGE
          value: "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0"
        - name: busybox_image
          value: busybox:1.36
        - name: WATCH_NAMESPACE
          value: quay.io/not-named-like-an-image
        - name: OPERATOR_IMAGE_VERSION
          value: v1.2.3
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        """
    )
    assert sorted(images) == [
        "busybox:1.36",
        "quay.io/op/manager:v1",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0",
        "registry.redhat.io/ubi9/operand@sha256:" + "b" * 64,
    ]
    source = images["busybox:1.36"][0]
    assert source.endswith("spec.template.spec.containers[manager].env[busybox_image].value")


def test_an_env_value_under_another_name_counts_only_as_a_full_reference():
    images = operator("""\
        env:
        - name: MAVEN_BUILDER
          value: quay.io/strimzi/maven-builder:0.43.0
        - name: UPSTREAM
          value: quay.io/strimzi
        - name: CACHE
          value: myorg/tool:1
        """)
    assert "quay.io/strimzi/maven-builder:0.43.0" in images
    assert "myorg/tool:1" not in images
    assert "quay.io/strimzi" not in images


def test_multi_line_version_image_maps_give_every_image():
    images = operator("""\
        env:
        - name: STRIMZI_KAFKA_IMAGES
          value: |
            3.7.0=quay.io/strimzi/kafka:0.41.0-kafka-3.7.0
            3.7.1=quay.io/strimzi/kafka:0.41.0-kafka-3.7.1
        - name: OTHER_IMAGES
          value: "quay.io/a/one:1, quay.io/a/two:2"
        """)
    assert {
        "quay.io/strimzi/kafka:0.41.0-kafka-3.7.0",
        "quay.io/strimzi/kafka:0.41.0-kafka-3.7.1",
        "quay.io/a/one:1",
        "quay.io/a/two:2",
    } <= set(images)
    assert "3.7.0" not in images


def test_image_flags_with_one_or_two_dashes_equals_or_next_argument_and_inside_sh_c():
    images = operator("""\
        command: ["/bin/sh", "-c", "exec /op --sidecar-image=quay.io/s/sidecar:1 --log-level=info"]
        args:
        - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.75
        - -configmapServerImage=quay.io/operator-framework/configmap-operator-registry:latest
        - -util-image
        - quay.io/operator-framework/olm:v0.28.0
        - --image-pull-policy=IfNotPresent
        - --images-dir=/var/lib/images
        - --kubelet-service=kube-system/kubelet
        - --metrics-addr=127.0.0.1:8080
        """)
    assert sorted(images) == [
        "quay.io/op/manager:v1",
        "quay.io/operator-framework/configmap-operator-registry:latest",
        "quay.io/operator-framework/olm:v0.28.0",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.75",
        "quay.io/s/sidecar:1",
    ]


def test_configmap_values_under_image_like_keys_or_in_an_image_configmap():
    images = found(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: rook-ceph-operator-config}
        data:
          ROOK_CSI_CEPH_IMAGE: "quay.io/cephcsi/cephcsi:v3.12.0"
          queue-sidecar-image: gcr.io/knative-releases/queue@sha256:"""
        + "c" * 64
        + """
          csi.attacherImage: registry.k8s.io/sig-storage/csi-attacher:v4.6.1
          ROOK_LOG_LEVEL: INFO
          upstream: quay.io/not/an-image-key:1
          # ROOK_CSI_REGISTRAR_IMAGE: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2"
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: rook-csi-operator-image-set-configmap}
        data:
          provisioner: "registry.k8s.io/sig-storage/csi-provisioner:v5.0.1"
          plugin: quay.io/cephcsi/cephcsi:v3.12.0
          verbosity: "5"
        """
    )
    assert sorted(images) == [
        "gcr.io/knative-releases/queue@sha256:" + "c" * 64,
        "quay.io/cephcsi/cephcsi:v3.12.0",
        "registry.k8s.io/sig-storage/csi-attacher:v4.6.1",
        "registry.k8s.io/sig-storage/csi-provisioner:v5.0.1",
    ]
    assert images["quay.io/cephcsi/cephcsi:v3.12.0"][0].startswith("m.yaml:5 ConfigMap/rook")


def test_custom_resource_image_fields_and_repository_tag_maps():
    images = found("""\
        apiVersion: ceph.rook.io/v1
        kind: CephCluster
        metadata: {name: rook-ceph}
        spec:
          cephVersion:
            image: quay.io/ceph/ceph:v18.2.4
          dashboard: {ssl: true, urlPrefix: /ceph}
        ---
        apiVersion: monitoring.coreos.com/v1
        kind: Prometheus
        metadata: {name: k8s}
        spec:
          image: quay.io/prometheus/prometheus:v2.53.0
          thanos:
            baseImage: quay.io/thanos/thanos
            version: v0.35.0
          alertmanagerImage: docker.io/prom/alertmanager:v0.27.0
        ---
        apiVersion: example.com/v1
        kind: Database
        metadata: {name: db}
        spec:
          exporter:
            image:
              registry: docker.io
              repository: bitnami/postgres-exporter
              tag: 0.15.0
          backup:
            repository: ghcr.io/corp/backup
            tag: "2024.1"
          source:
            repository: https://github.com/corp/db.git
            tag: v1
          sidecarImage: redis:6379
        """)
    assert sorted(images) == [
        "docker.io/bitnami/postgres-exporter:0.15.0",
        "docker.io/prom/alertmanager:v0.27.0",
        "ghcr.io/corp/backup:2024.1",
        "quay.io/ceph/ceph:v18.2.4",
        "quay.io/prometheus/prometheus:v2.53.0",
        "quay.io/thanos/thanos",
    ]


def test_builtin_kinds_outside_containers_and_custom_fields_in_builtins_never_count():
    images = found("""\
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          externalName: quay.io
          image: quay.io/not/service-field:1
        """)
    assert images == {}


def test_helm_hooks_and_test_pods_are_images_too():
    images = found("""\
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: pre-install-migrate
          annotations:
            helm.sh/hook: pre-install,pre-upgrade
            helm.sh/hook-delete-policy: hook-succeeded
        spec:
          template:
            spec:
              restartPolicy: Never
              containers:
              - name: migrate
                image: ghcr.io/corp/migrate:3.2
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: test-connection
          annotations: {helm.sh/hook: test}
        spec:
          containers:
          - name: wget
            image: busybox:1.36
        """)
    assert sorted(images) == ["busybox:1.36", "ghcr.io/corp/migrate:3.2"]


def test_anchors_aliases_and_merge_keys_give_values_not_anchor_text():
    images = found("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - &base
            name: a
            image: &img quay.io/anchored/app:1.0
            env: &env
            - name: HELPER_IMAGE
              value: &helper quay.io/anchored/helper:2
          - <<: *base
            name: b
          - name: c
            image: *img
            env: *env
        """)
    assert sorted(images) == ["quay.io/anchored/app:1.0", "quay.io/anchored/helper:2"]
    assert len(images["quay.io/anchored/app:1.0"]) == 3
    assert not any("&" in image or "*" in image for image in images)


def test_comments_never_count():
    images = found("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - name: a
            # image: quay.io/commented/out:1
            image: quay.io/real/app:1  # was image: quay.io/old/app:0
        #   - name: b
        #     image: quay.io/commented/b:1
        """)
    assert list(images) == ["quay.io/real/app:1"]


def test_labels_annotations_and_last_applied_configuration_never_count():
    last = json.dumps({"spec": {"containers": [{"image": "quay.io/previous/app:0"}]}})
    images = found(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: d
          labels: {{image: quay.io/label/x, app.kubernetes.io/version: "1.0"}}
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: '{last}'
            image.example.com/source: quay.io/annotation/x:1
        spec:
          template:
            metadata:
              annotations: {{sidecar-image: quay.io/pod-annotation/x:1}}
            spec:
              containers:
              - name: a
                image: quay.io/real/app:1
        ---
        apiVersion: example.com/v1
        kind: Widget
        metadata:
          name: w
          annotations: {{widgetImage: quay.io/cr-annotation/x:1}}
        spec: {{}}
        status:
          image: quay.io/status/x:1
        """)
    assert list(images) == ["quay.io/real/app:1"]


def test_urls_paths_and_host_port_strings_are_not_images():
    images = operator("""\
        env:
        - name: REGISTRY_IMAGE
          value: https://quay.io/repository/org/app
        - name: CACHE_IMAGE
          value: redis-master.cache.svc.cluster.local:6379
        - name: SIDECAR_IMAGE
          value: 10.0.0.12:5000
        - name: LOG_IMAGE
          value: /var/log/images
        - name: BACKUP_IMAGE
          value: localhost:5000
        args: ["--api-image=http://example.com/a:1", "--image-endpoint=unix:///run/x.sock"]
        """)
    assert list(images) == ["quay.io/op/manager:v1"]


def test_output_is_sorted_deduplicated_and_exactly_as_written():
    images = found(
        """\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - {name: a, image: "nginx:1.25"}
          - {name: b, image: docker.io/library/nginx:1.25}
          - {name: c, image: "quay.io/x/y:1@sha256:"""
        + "d" * 64
        + """"}
          - {name: d, image: nginx:1.25}
          - {name: e, image: alpine}
        """
    )
    assert list(images) == [
        "alpine",
        "docker.io/library/nginx:1.25",
        "nginx:1.25",
        "quay.io/x/y:1@sha256:" + "d" * 64,
    ]
    assert len(images["nginx:1.25"]) == 2


def test_unsure_candidates_become_hints_never_images():
    text = OPERATOR.replace("{extra}", _indent("""\
        env:
        - name: TOOL_IMAGE
          value: myorg/tool:1.2
        - name: TEMPLATED_IMAGE
          value: quay.io/x/{{ .Values.name }}:1
        """, 12).lstrip())  # fmt: skip
    assert sorted(hints(text)) == ["myorg/tool:1.2", "quay.io/x/{{ .Values.name }}:1"]
    assert "myorg/tool:1.2" not in found(text)


def test_a_container_image_that_does_not_parse_is_a_hint():
    assert hints(
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - {name: a, image: 'Not An Image'}\n"
    ) == ["Not An Image"]


def test_a_document_that_does_not_parse_names_its_line_and_the_others_are_read():
    text = (
        "kind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, image: quay.io/a:1}]\n"
        "---\nkind: Pod\nmetadata: {name: [unclosed\n"
        "---\nkind: Pod\nmetadata: {name: c}\nspec:\n"
        "  containers: [{name: c, image: quay.io/c:1}]\n"
    )
    documents, errors = load_documents(text, "bad.yaml")
    assert [e.where for e in errors] == ["bad.yaml:8"] or [e.where for e in errors] == [
        "bad.yaml:7"
    ]
    assert "YAML syntax error" in errors[0].message
    images, _ = findings([c for d in documents for c in candidates(d)])
    assert sorted(i for i, _ in images) == ["quay.io/a:1", "quay.io/c:1"]


def test_crds_secrets_and_objects_without_kind_are_skipped():
    images = found("""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          versions:
          - name: v1
            schema:
              openAPIV3Schema:
                properties:
                  image: {type: string, default: "quay.io/default/x:1"}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: s}
        stringData: {image: quay.io/secret/x:1}
        ---
        image: quay.io/no-kind/x:1
        """)
    assert images == {}


def test_split_documents_keeps_line_numbers():
    assert [line for line, _ in split_documents("a: 1\n---\nb: 2\n--- # c\nd: 3\n")] == [1, 2, 4]


def test_an_alias_bomb_is_an_error_not_a_hang():
    bomb = "kind: Widget\nmetadata: {name: w}\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for letter, previous in zip("bcdefgh", "abcdefg", strict=True):
        bomb += f"{letter}: &{letter} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    documents, _ = load_documents(bomb, "bomb.yaml")
    with pytest.raises(ValueError, match="values"):
        candidates(documents[0])


@pytest.mark.parametrize(
    ("text", "direct", "verdict"),
    [
        ("nginx", True, "image"),
        ("nginx:1.25", False, "image"),
        ("postgres:16", False, "image"),
        ("redis:6379", False, "drop"),
        ("quay.io/a/b", False, "image"),
        ("localhost:5000/a:1", False, "image"),
        ("[::1]:5000/a:1", False, "image"),
        ("localhost:5000", False, "drop"),
        ("myorg/app:1", False, "hint"),
        ("https://quay.io/a/b:1", False, "drop"),
        ("/usr/bin/x", False, "drop"),
        ("v1.2.3", False, "drop"),
        ("true", False, "drop"),
        ("", True, "drop"),
        ("Bad Image", True, "hint"),
    ],
)
def test_the_judge(text, direct, verdict):
    assert judge(text, direct=direct)[0] == verdict


def test_the_shaped_rule_wants_registry_path_and_tag():
    assert judge_shaped("quay.io/a/b:1")[0] == "image"
    assert judge_shaped("quay.io/a/b")[0] == "hint"
    assert judge_shaped("nginx:1.25")[0] == "drop"
    assert judge_shaped("cache.svc:6379")[0] == "drop"


def test_helm_values_maps_and_strings_with_a_hint_for_a_missing_tag():
    documents, _ = load_documents(textwrap.dedent("""\
        image:
          registry: docker.io
          repository: bitnami/nginx
          tag: 1.25.3-debian-12-r0
          digest: ""
        metrics:
          image: {repository: quay.io/nginx/nginx-prometheus-exporter, tag: "1.1"}
        controller:
          image:
            repository: registry.k8s.io/ingress-nginx/controller
            tag: ""
        sidecarImage: quay.io/corp/sidecar:2
        replicaCount: 1
        """), "chart/values.yaml")  # fmt: skip
    found_, hints_ = values_candidates(documents[0].data, "chart/values.yaml", "1.11.2")
    assert sorted(c.text for c in found_) == [
        "docker.io/bitnami/nginx:1.25.3-debian-12-r0",
        "quay.io/corp/sidecar:2",
        "quay.io/nginx/nginx-prometheus-exporter:1.1",
    ]
    assert [h.text for h in hints_] == ["registry.k8s.io/ingress-nginx/controller:1.11.2"]
    assert "set controller.image.tag" in hints_[0].reason
    assert "1.11.2" in hints_[0].reason
