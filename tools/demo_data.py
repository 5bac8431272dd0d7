"""Write the demo's data sets (mmkd/datasets/demo_data.py): python tools/demo_data.py data/demo"""
from mmkd.datasets.demo_data import main

if __name__ == '__main__':
    main()
