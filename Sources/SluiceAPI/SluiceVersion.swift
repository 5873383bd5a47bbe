/// The version this build of Sluice is: `sluice --version` prints it, `GET /version` and `GET /healthz` serve it,
/// and the release image is tagged with it (manifests/base/kustomization.yaml; a test keeps the three the same).
public enum SluiceVersion {
    public static let current = "0.1.0"
}
