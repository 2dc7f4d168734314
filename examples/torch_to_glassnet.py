"""A small CNN trained in PyTorch on mnist5k, exported to ONNX, then seen through in glassnet.

    python examples/torch_to_glassnet.py
    glassnet import torch_cnn.onnx --out torch_cnn.glassnet --dataset mnist5k
    glassnet evaluate torch_cnn.glassnet --dataset mnist5k      # the accuracy PyTorch printed
    glassnet explain --model torch_cnn.glassnet --image four.png
    glassnet inspect torch_cnn.glassnet four.png --out pictures
"""
import numpy as np
import torch

import glassnet as gn


def main(epochs=4, seed=0):
    torch.manual_seed(seed)
    data = gn.datasets.mnist5k()
    x, y = torch.from_numpy(data.x_train.astype(np.float32)), torch.from_numpy(data.y_train)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(torch.from_numpy(data.x_test.astype(np.float32))).argmax(1).numpy() == data.y_test).mean()
    print(f"PyTorch test accuracy {accuracy:.4f}")
    torch.onnx.export(net, (x[:1],), "torch_cnn.onnx", dynamo=True, input_names=["input"],
                      dynamic_shapes=({0: torch.export.Dim("N")},))
    print("wrote torch_cnn.onnx (its weights in torch_cnn.onnx.data beside it)")


if __name__ == "__main__":
    main()
